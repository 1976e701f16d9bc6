package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/tiercache/tiercache/tiered"
)

// progress shows long transfers on stderr: a live bar with bytes, rate and
// ETA on a terminal, or one plain line every interval in a CI log (a bar
// redrawn with carriage returns makes a log unreadable). Transfers shorter
// than the interval print nothing in a log. It is safe for concurrent use.
type progress struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	now      func() time.Time

	mu        sync.Mutex
	op, key   string
	done      int64
	total     int64
	start     time.Time
	lastPrint time.Time
	bar       *progressbar.ProgressBar
}

// newProgress returns the reporter for a, or nil with --quiet. A nil
// *progress ignores every call.
func (a *app) newProgress(w io.Writer) *progress {
	if a.flags.quiet {
		return nil
	}
	return &progress{w: w, tty: a.isTerminal(w), interval: a.progressInterval, now: time.Now}
}

// transfer adapts p to tiered.Options.Progress.
func (p *progress) transfer(tp tiered.Progress) {
	p.set(tp.Op, tp.Key, tp.Done, tp.Total)
}

// set records that op on key has moved done of total bytes (total -1 when
// unknown). A new op or key ends the previous transfer's display.
func (p *progress) set(op, key string, done, total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if op != p.op || key != p.key {
		p.finishLocked()
		p.op, p.key, p.start, p.lastPrint = op, key, now, now
	}
	p.done, p.total = done, total
	if p.tty {
		if p.bar == nil {
			p.bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription(fmt.Sprintf("%s %q", op, key)),
				progressbar.OptionShowBytes(true),
				progressbar.OptionShowTotalBytes(true),
				progressbar.OptionShowCount(),
				progressbar.OptionUseIECUnits(true),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionSetWidth(20),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
				progressbar.OptionSpinnerType(14),
			)
		}
		if total > 0 && p.bar.GetMax64() != total {
			p.bar.ChangeMax64(total)
		}
		_ = p.bar.Set64(done)
		return
	}
	if now.Sub(p.lastPrint) >= p.interval {
		p.lastPrint = now
		fmt.Fprintln(p.w, p.lineLocked(now))
	}
}

// lineLocked is the plain progress line.
func (p *progress) lineLocked(now time.Time) string {
	elapsed := now.Sub(p.start)
	s := fmt.Sprintf("tiercache: %s %q: %s", p.op, p.key, formatBytes(p.done))
	if p.total > 0 {
		s += fmt.Sprintf(" of %s (%d%%)", formatBytes(p.total), p.done*100/p.total)
	}
	s += ", " + formatRate(p.done, elapsed)
	if p.total > 0 && p.done > 0 && p.done < p.total {
		eta := time.Duration(float64(elapsed) * float64(p.total-p.done) / float64(p.done))
		s += ", ETA " + eta.Round(time.Second).String()
	}
	return s
}

// finish ends the current transfer's display, clearing a bar so the
// summary line that follows starts on a clean line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked()
}

func (p *progress) finishLocked() {
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
	p.op, p.key = "", ""
}
