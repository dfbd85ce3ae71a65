package gitsource

// Trigger coalesces refresh requests for one repository: any number of Fire
// calls while a refresh is pending or running cause exactly one more receive
// on C. The zero value is not usable; use NewTrigger.
type Trigger struct {
	c chan struct{}
}

// NewTrigger returns a Trigger with nothing pending.
func NewTrigger() *Trigger {
	return &Trigger{c: make(chan struct{}, 1)}
}

// Fire asks for a refresh. It never blocks: when a refresh is already pending
// the request merges into it.
func (t *Trigger) Fire() {
	select {
	case t.c <- struct{}{}:
	default:
	}
}

// C is the channel the refresh loop receives from. Receiving takes the
// pending request; a Fire after that schedules the next one.
func (t *Trigger) C() <-chan struct{} {
	return t.c
}
