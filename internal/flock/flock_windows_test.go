package flock

import (
	"strings"
	"testing"
)

func TestExtendedPath(t *testing.T) {
	long := `C:\` + strings.Repeat(`d\`, 150) + "l"
	for _, c := range []struct{ in, want string }{
		{`C:\cache\l`, `C:\cache\l`},
		{long, `\\?\` + long},
		{strings.ReplaceAll(long, `\`, `/`), `\\?\` + long},
		{`\\?\` + long, `\\?\` + long},
		{`\\server\share\` + long[3:], `\\server\share\` + long[3:]},
	} {
		if got := extendedPath(c.in); got != c.want {
			t.Errorf("extendedPath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
