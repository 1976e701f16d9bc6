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
//
// Rates and ETAs are computed here, from now, rather than by the bar
// library: its first readings divide the bytes of the first read by a few
// microseconds (hundreds of GiB/s, ETAs of days). Neither is shown until
// minRateWindow of the transfer has passed.
type progress struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	now      func() time.Time
	// barThrottle is the least time between two redraws of the bar.
	barThrottle time.Duration

	mu           sync.Mutex
	op, key      string
	done         int64
	total        int64
	start        time.Time
	lastPrint    time.Time
	lastDescribe time.Time
	bar          *progressbar.ProgressBar
}

// minRateWindow is how much of a transfer must have passed before its rate
// and ETA mean anything: the first reads fill buffers at memory speed.
const minRateWindow = time.Second

// newProgress returns the reporter for a, or nil with --quiet. A nil
// *progress ignores every call.
func (a *app) newProgress(w io.Writer) *progress {
	if a.flags.quiet {
		return nil
	}
	return &progress{w: w, tty: a.isTerminal(w), interval: a.progressInterval, now: time.Now, barThrottle: 100 * time.Millisecond}
}

// transfer adapts p to tiered.Options.Progress.
func (p *progress) transfer(tp tiered.Progress) {
	if tp.Op == "wait" || tp.Op == "wait-push" {
		if p != nil {
			// Said at once: a wait can be long, and silence looks like a hang.
			doing := "downloading"
			if tp.Op == "wait-push" {
				doing = "pushing"
			}
			p.mu.Lock()
			fmt.Fprintf(p.w, "tiercache: waiting for another tiercache process on this machine, which is %s %q\n", doing, tp.Key)
			p.mu.Unlock()
		}
		return
	}
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
			// No byte counts, rate or ETA from the library (see the
			// type's comment): the description carries ours.
			p.bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription(p.statusLocked(now, false)),
				progressbar.OptionSetPredictTime(false),
				progressbar.OptionSetElapsedTime(false),
				progressbar.OptionSetWidth(20),
				progressbar.OptionThrottle(p.barThrottle),
				progressbar.OptionClearOnFinish(),
				progressbar.OptionSpinnerType(14),
			)
			p.lastDescribe = now
		} else if now.Sub(p.lastDescribe) >= p.barThrottle {
			p.lastDescribe = now
			p.bar.Describe(p.statusLocked(now, false))
		}
		if total > 0 && p.bar.GetMax64() != total {
			p.bar.ChangeMax64(total)
		}
		_ = p.bar.Set64(done)
		return
	}
	if now.Sub(p.lastPrint) >= p.interval {
		p.lastPrint = now
		fmt.Fprintln(p.w, "tiercache: "+p.statusLocked(now, true))
	}
}

// statusLocked describes the transfer: bytes done, of how many (with the
// percentage if percent), and the rate and ETA once minRateWindow has
// passed.
func (p *progress) statusLocked(now time.Time, percent bool) string {
	elapsed := now.Sub(p.start)
	s := fmt.Sprintf("%s %q: %s", p.op, p.key, formatBytes(p.done))
	if p.total > 0 {
		s += " of " + formatBytes(p.total)
		if percent {
			s += fmt.Sprintf(" (%d%%)", p.done*100/p.total)
		}
	}
	if elapsed < minRateWindow || p.done <= 0 {
		return s
	}
	s += ", " + formatRate(p.done, elapsed)
	if p.total > 0 && p.done < p.total {
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
