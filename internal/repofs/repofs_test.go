package repofs

import (
	"errors"
	"strings"
	"testing"
)

func TestJoinLink(t *testing.T) {
	for _, c := range []struct {
		dir    []string
		target string
		rest   []string
		want   string
		escape bool
	}{
		{nil, "a/b", []string{"c"}, "a/b/c", false},
		{[]string{"x", "y"}, "../z", nil, "x/z", false},
		{[]string{"x"}, "../..", nil, "", true},
		{[]string{"x"}, "y/../../../z", nil, "", true},
		{[]string{"x"}, "y/../../z", nil, "z", false},
		{nil, "/etc/passwd", nil, "", true},
		{nil, "", nil, "", true},
	} {
		got, err := JoinLink(c.dir, "l", c.target, c.rest)
		if c.escape != errors.Is(err, ErrEscapes) || (!c.escape && strings.Join(got, "/") != c.want) {
			t.Errorf("JoinLink(%v, %q, %v) = %v, %v; want %q escape=%v", c.dir, c.target, c.rest, got, err, c.want, c.escape)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{1 << 20: "1 MiB", 8 << 20: "8 MiB", 512 << 10: "512 KiB", 1000: "1000 bytes", 1<<20 + 1: "1048577 bytes"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
