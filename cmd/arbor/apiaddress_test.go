package main

import "testing"

// The address a replica publishes for forwarding: the flag, else the pod's
// IP with the listening port, else the listening address only when it
// names a host.
func TestAPIAddress(t *testing.T) {
	for _, c := range []struct{ flag, podIP, listening, want string }{
		{"arbor-0.arbor:8080", "10.0.0.5", "[::]:8080", "arbor-0.arbor:8080"},
		{"", "10.0.0.5", "[::]:8080", "10.0.0.5:8080"},
		{"", "fd00::5", "0.0.0.0:8080", "[fd00::5]:8080"},
		{"", "", "127.0.0.1:4123", "127.0.0.1:4123"},
		{"", "", "[::]:8080", ""},
		{"", "", "0.0.0.0:8080", ""},
		{"", "", ":8080", ""},
	} {
		if got := apiAddress(c.flag, c.podIP, c.listening); got != c.want {
			t.Errorf("apiAddress(%q, %q, %q) = %q; want %q", c.flag, c.podIP, c.listening, got, c.want)
		}
	}
}
