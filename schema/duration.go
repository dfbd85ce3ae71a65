package schema

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var daysRE = regexp.MustCompile(`^(\d+)d`)

// ParseDuration reads a duration such as expires_after: Go's syntax (72h,
// 90m, 1h30m) plus a leading whole number of days (3d, 2d12h). A day is 24
// hours. A bare number is rejected: its unit would be a guess.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	orig := s
	var days time.Duration
	if m := daysRE.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 100000 {
			return 0, fmt.Errorf("%q is not a duration: too many days", orig)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[len(m[0]):]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (such as 72h, 90m or 3d)", orig)
	}
	return days + d, nil
}
