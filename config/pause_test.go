package config

import (
	"strings"
	"testing"
	"time"
)

func TestPauseScheduleAndOverrides(t *testing.T) {
	cfg, err := Load(fixture(t, `
apps:
- name: a
  repo: repo
  pause:
    schedule: {time_zone: Europe/Berlin, days: weekdays, hours: "08:00-19:00"}
    idle_after: 2h
    overrides:
    - branches: [main, "release/*"]
    - branches: ["demo-*"]
      schedule: {days: weekends}
      wake_on_push: true
`))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Apps[0].Pause
	if got := p.For("feature-x"); !got.Schedule.Set() || got.IdleAfter != 2*time.Hour || got.WakeOnPush {
		t.Errorf("feature-x: %+v, want the app's schedule and idle_after 2h", got)
	}
	if got := p.For("release/1"); got.Active() || got.WakeOnPush {
		t.Errorf("release/1: %+v, want no pausing (an override with branches only)", got)
	}
	if got := p.For("demo-1"); got.Schedule.Days != DaysWeekends || !got.WakeOnPush || got.IdleAfter != 0 {
		t.Errorf("demo-1: %+v, want weekends, wake_on_push, no idle", got)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	s := p.Schedule
	at := func(day, hh, mm int) time.Time { return time.Date(2026, 11, day, hh, mm, 0, 0, berlin) } // 2026-11-23 is a Monday
	for _, c := range []struct {
		t       time.Time
		running bool
		since   time.Time
		next    time.Time
	}{
		{at(23, 7, 59), false, at(20, 19, 0), at(23, 8, 0)},  // Monday before hours: paused since Friday 19:00
		{at(23, 8, 0), true, at(23, 8, 0), at(23, 19, 0)},    // Monday at 8
		{at(23, 18, 59), true, at(23, 8, 0), at(23, 19, 0)},  // Monday before 19
		{at(27, 19, 30), false, at(27, 19, 0), at(30, 8, 0)}, // Friday evening: paused until Monday
		{at(28, 12, 0), false, at(27, 19, 0), at(30, 8, 0)},  // Saturday noon
		{at(29, 23, 59), false, at(27, 19, 0), at(30, 8, 0)}, // Sunday night
		{at(30, 10, 0), true, at(30, 8, 0), at(30, 19, 0)},   // the next Monday
	} {
		running, since := s.Since(c.t)
		if running != c.running || !since.Equal(c.since) || !s.Next(c.t).Equal(c.next) {
			t.Errorf("%s: running %v since %s next %s; want %v since %s next %s", c.t, running, since, s.Next(c.t), c.running, c.since, c.next)
		}
	}
	// only weekends: running all Saturday and Sunday, paused all week
	w := p.For("demo-1").Schedule
	utc := func(day, hh, mm int) time.Time { return time.Date(2026, 11, day, hh, mm, 0, 0, time.UTC) }
	if w.Running(utc(27, 12, 0)) || !w.Running(utc(28, 0, 0)) || !w.Running(utc(29, 23, 59)) || w.Running(utc(30, 0, 0)) {
		t.Error("days: weekends runs on other days than Saturday and Sunday")
	}
	if _, since := w.Since(utc(25, 12, 0)); !since.Equal(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("weekends schedule on a Wednesday: paused since %s, want Monday 00:00 UTC", since)
	}
}

func TestPauseErrors(t *testing.T) {
	for body, want := range map[string]string{
		"pause: {schedule: {days: sundays}}":                   `apps[0].pause.schedule.days: "sundays": use every_day, weekdays or weekends`,
		"pause: {schedule: {hours: 19:00-08:00}}":              `apps[0].pause.schedule.hours: "19:00-08:00": write the running hours as HH:MM-HH:MM, the start before the end`,
		"pause: {schedule: {hours: 9-17}}":                     `apps[0].pause.schedule.hours: "9-17"`,
		"pause: {schedule: {hours: 00:00-24:00}}":              `apps[0].pause.schedule.hours: "00:00-24:00" runs all day every day`,
		"pause: {schedule: {days: weekdays, time_zone: Mars}}": `apps[0].pause.schedule.time_zone: "Mars" is not an IANA time zone`,
		"pause: {schedule: {time_zone: UTC}}":                  "apps[0].pause.schedule.time_zone: a time zone without days or hours schedules nothing",
		"pause: {idle_after: 10s}":                             "apps[0].pause.idle_after: must be 0 (never) or at least 1m, got 10s",
		"pause: {overrides: [{idle_after: 1h}]}":               "apps[0].pause.overrides[0].branches: required",
		"pause: {overrides: [{branches: [main], soon: 1}]}":    "apps[0].pause.overrides[0].soon: unknown key",
		"pause: {wake_on_pull: true}":                          "apps[0].pause.wake_on_pull: unknown key",
	} {
		_, err := Load(fixture(t, "apps:\n- name: a\n  repo: repo\n  "+body+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v; want it to contain %q", body, err, want)
		}
	}
	_, err := Load(fixture(t, "apps:\n- name: a\n  repo: repo\nserver: {listen: ':9000', wake_listen: ':9000'}\n"))
	if err == nil || !strings.Contains(err.Error(), "server.wake_listen") {
		t.Errorf("wake_listen on listen's port: %v", err)
	}
}
