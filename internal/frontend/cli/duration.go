package cli

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// maxDays is the most days a time.Duration holds.
const maxDays = int(time.Duration(1<<63-1) / (24 * time.Hour))

// errTooLong: the duration does not fit a time.Duration (about 292
// years); past that, arithmetic wraps around silently.
var errTooLong = errors.New("duration too long")

// parseDuration reads a Go duration (72h) or a number of days (30d), not
// negative. A duration that only overflows is errTooLong, so that the
// caller can say so instead of "not a duration".
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		switch {
		case errors.Is(err, strconv.ErrRange), err == nil && n > maxDays:
			return 0, errTooLong
		case err == nil && n >= 0:
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err == nil && d >= 0 {
		return d, nil
	}
	// ParseDuration says "invalid" for an overflow too: a duration that
	// parses with a small number instead was only too long.
	if unit := strings.TrimLeft(s, "0123456789."); err != nil && unit != s {
		if _, err := time.ParseDuration("1" + unit); err == nil {
			return 0, errTooLong
		}
	}
	return 0, errors.New("not a duration")
}
