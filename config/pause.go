package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // schedules name IANA time zones; the daemon's image may have no zoneinfo

	"github.com/arbordev/arbor/schema"
)

// Pause says when an app's environments are paused: scaled to zero with
// their namespace, volumes, Secrets and ConfigMaps kept (docs/pausing.md).
// The zero value never pauses on its own; the API can still pause.
type Pause struct {
	// Schedule is when the environments run; outside it they are paused.
	Schedule Schedule `yaml:"schedule"`
	// IdleAfter pauses an environment that had no push, deploy, resume or
	// wake request for this long; 0: never.
	IdleAfter Duration `yaml:"idle_after"`
	// WakeOnPush resumes a paused environment when its branch gets a new
	// commit; without it the commit is applied and the environment stays
	// paused.
	WakeOnPush bool `yaml:"wake_on_push"`
	// Overrides replace the settings above for the branches they match,
	// the first match winning: an override with nothing but branches turns
	// scheduled and idle pausing off for them.
	Overrides []PauseOverride `yaml:"overrides"`
}

// PauseOverride is an app's pausing for some of its branches.
type PauseOverride struct {
	Branches   schema.Globs `yaml:"branches"`
	Schedule   Schedule     `yaml:"schedule"`
	IdleAfter  Duration     `yaml:"idle_after"`
	WakeOnPush bool         `yaml:"wake_on_push"`
}

// PauseSettings are the pausing of one environment, overrides resolved.
type PauseSettings struct {
	Schedule   Schedule
	IdleAfter  time.Duration
	WakeOnPush bool
}

// Active reports whether anything but the API pauses the environment.
func (p PauseSettings) Active() bool { return p.Schedule.Set() || p.IdleAfter > 0 }

// For returns the pausing of branch: the first override matching it, else
// the app's own.
func (p Pause) For(branch string) PauseSettings {
	for _, o := range p.Overrides {
		if o.Branches.MatchAny(branch) {
			return PauseSettings{Schedule: o.Schedule, IdleAfter: o.IdleAfter.Duration, WakeOnPush: o.WakeOnPush}
		}
	}
	return PauseSettings{Schedule: p.Schedule, IdleAfter: p.IdleAfter.Duration, WakeOnPush: p.WakeOnPush}
}

// Active reports whether any branch of the app can be paused by a schedule
// or by idling.
func (p Pause) Active() bool {
	if p.Schedule.Set() || p.IdleAfter.Duration > 0 {
		return true
	}
	for _, o := range p.Overrides {
		if o.Schedule.Set() || o.IdleAfter.Duration > 0 {
			return true
		}
	}
	return false
}

// The values of Schedule.Days.
const (
	DaysEveryDay = "every_day"
	DaysWeekdays = "weekdays" // Monday to Friday
	DaysWeekends = "weekends" // Saturday and Sunday
)

// Schedule is when environments run, in a time zone: on Days, during
// Hours. Outside it they are paused. Unset (no days, no hours): no schedule.
type Schedule struct {
	// TimeZone is an IANA time zone such as Europe/Berlin; UTC when empty.
	TimeZone string `yaml:"time_zone"`
	// Days is every_day (the default), weekdays or weekends.
	Days string `yaml:"days"`
	// Hours is "HH:MM-HH:MM", the running hours of each day of Days (the
	// end may be 24:00); every hour of those days when empty.
	Hours string `yaml:"hours"`

	loc      *time.Location
	from, to int // minutes after midnight
}

// Set reports whether the schedule says anything.
func (s Schedule) Set() bool { return s.Days != "" || s.Hours != "" }

// compile checks the schedule and fills its parsed fields; the error names
// the key at fault.
func (s *Schedule) compile() (string, error) {
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil || strings.EqualFold(s.TimeZone, "local") {
		return "time_zone", fmt.Errorf("%q is not an IANA time zone such as Europe/Berlin or America/New_York", s.TimeZone)
	}
	s.loc = loc
	switch s.Days {
	case "", DaysEveryDay, DaysWeekdays, DaysWeekends:
	default:
		return "days", fmt.Errorf("%q: use %s, %s or %s", s.Days, DaysEveryDay, DaysWeekdays, DaysWeekends)
	}
	s.from, s.to = 0, 24*60
	if s.Hours == "" {
		return "", nil
	}
	a, b, ok := strings.Cut(s.Hours, "-")
	from, err1 := clockMinutes(strings.TrimSpace(a))
	to, err2 := clockMinutes(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || from >= to {
		return "hours", fmt.Errorf("%q: write the running hours as HH:MM-HH:MM, the start before the end, like 08:00-19:00", s.Hours)
	}
	s.from, s.to = from, to
	if s.Days == "" && from == 0 && to == 24*60 {
		return "hours", fmt.Errorf("%q runs all day every day: leave the schedule out", s.Hours)
	}
	return "", nil
}

func clockMinutes(v string) (int, error) {
	h, m, ok := strings.Cut(v, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || len(m) != 2 || err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("bad time %q", v)
	}
	return hh*60 + mm, nil
}

// Running reports whether the schedule runs environments at t.
func (s Schedule) Running(t time.Time) bool {
	if !s.Set() {
		return true
	}
	l := t.In(s.location())
	switch wd := l.Weekday(); {
	case s.Days == DaysWeekdays && (wd == time.Saturday || wd == time.Sunday):
		return false
	case s.Days == DaysWeekends && wd != time.Saturday && wd != time.Sunday:
		return false
	}
	m := l.Hour()*60 + l.Minute()
	from, to := s.hours()
	return m >= from && m < to
}

func (s Schedule) location() *time.Location {
	if s.loc == nil {
		return time.UTC
	}
	return s.loc
}

func (s Schedule) hours() (int, int) {
	if s.from == 0 && s.to == 0 {
		return 0, 24 * 60
	}
	return s.from, s.to
}

// boundaries are the instants around now, in order, at which the schedule
// may change: each day's midnight, start and end of hours, for a week and a
// day either side.
func (s Schedule) boundaries(now time.Time) []time.Time {
	loc := s.location()
	l := now.In(loc)
	from, to := s.hours()
	var out []time.Time
	for d := -8; d <= 8; d++ {
		day := time.Date(l.Year(), l.Month(), l.Day()+d, 0, 0, 0, 0, loc)
		for _, m := range []int{0, from, to} {
			out = append(out, time.Date(day.Year(), day.Month(), day.Day(), m/60, m%60, 0, 0, loc))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// Since returns whether the schedule runs environments at now, and since
// when it has said so (zero for an unset schedule or one that never
// changes).
func (s Schedule) Since(now time.Time) (running bool, since time.Time) {
	running = s.Running(now)
	if !s.Set() {
		return running, time.Time{}
	}
	b := s.boundaries(now)
	for i := len(b) - 1; i >= 0; i-- {
		t := b[i]
		if t.After(now) {
			continue
		}
		if s.Running(t.Add(-time.Nanosecond)) != running {
			return running, t
		}
	}
	return running, time.Time{}
}

// Next returns the next instant after now at which the schedule changes,
// zero when it does not within a week.
func (s Schedule) Next(now time.Time) time.Time {
	if !s.Set() {
		return time.Time{}
	}
	running := s.Running(now)
	for _, t := range s.boundaries(now) {
		if t.After(now) && s.Running(t) != running {
			return t
		}
	}
	return time.Time{}
}

// pause checks an app's pause settings.
func (d *decoder) pause(p *Pause, field string) {
	d.schedule(&p.Schedule, field+".schedule")
	d.idleAfter(p.IdleAfter.Duration, field+".idle_after")
	for i := range p.Overrides {
		o := &p.Overrides[i]
		of := fmt.Sprintf("%s.overrides[%d]", field, i)
		if len(o.Branches) == 0 {
			d.fail(of+".branches", "required: the branch patterns the override is for")
		}
		d.schedule(&o.Schedule, of+".schedule")
		d.idleAfter(o.IdleAfter.Duration, of+".idle_after")
	}
}

// idleAfter checks an idle_after: 0 (never), or a minute or more.
func (d *decoder) idleAfter(v time.Duration, field string) {
	if v < 0 || (v > 0 && v < time.Minute) {
		d.fail(field, "must be 0 (never) or at least 1m, got %s", v)
	}
}

func (d *decoder) schedule(s *Schedule, field string) {
	if !s.Set() {
		if s.TimeZone != "" {
			d.fail(field+".time_zone", "a time zone without days or hours schedules nothing")
		}
		return
	}
	if key, err := s.compile(); err != nil {
		d.fail(field+"."+key, "%v", err)
	}
}
