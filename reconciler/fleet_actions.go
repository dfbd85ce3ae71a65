package reconciler

import (
	"context"
	"fmt"
	"io"
	"time"
)

// The API's actions on an environment, on whichever cluster it is: the
// member that knows the environment takes the call (the action is recorded
// on the environment's namespace there, for the replica acting on its app).

// at returns the member whose cache knows app's environment env.
func (f *Fleet) at(app, env string) (*Reconciler, error) {
	for _, r := range f.members {
		if _, ok := r.findEnvironment(app, env); ok {
			return r, nil
		}
	}
	return nil, fmt.Errorf("app %s has no environment %s: %w", app, env, ErrNoEnvironment)
}

// Environment returns one environment of app, by env id or branch.
func (f *Fleet) Environment(app, env string) (EnvironmentStatus, bool) {
	for _, r := range f.members {
		if st, ok := r.Environment(app, env); ok {
			return st, true
		}
	}
	return EnvironmentStatus{}, false
}

// Extend is Reconciler.Extend on the environment's cluster.
func (f *Fleet) Extend(ctx context.Context, app, env string, by time.Duration) (ExtendResponse, error) {
	r, err := f.at(app, env)
	if err != nil {
		return ExtendResponse{}, err
	}
	return r.Extend(ctx, app, env, by)
}

// Delete is Reconciler.Delete on the environment's cluster.
func (f *Fleet) Delete(ctx context.Context, app, env, by string) (DeleteResponse, error) {
	r, err := f.at(app, env)
	if err != nil {
		return DeleteResponse{}, err
	}
	return r.Delete(ctx, app, env, by)
}

// Logs is Reconciler.Logs on the environment's cluster.
func (f *Fleet) Logs(ctx context.Context, app, env string, q LogRequest, w io.Writer) error {
	r, err := f.at(app, env)
	if err != nil {
		return err
	}
	return r.Logs(ctx, app, env, q, w)
}

// SetPaused is Reconciler.SetPaused on the environment's cluster.
func (f *Fleet) SetPaused(ctx context.Context, app, env string, paused bool) (PauseResponse, error) {
	r, err := f.at(app, env)
	if err != nil {
		return PauseResponse{}, err
	}
	return r.SetPaused(ctx, app, env, paused)
}

// Wake is Reconciler.Wake on the cluster whose paused environment serves
// host; nothing is found when none does.
func (f *Fleet) Wake(ctx context.Context, host string) (WakeResult, error) {
	for _, r := range f.members {
		res, err := r.Wake(ctx, host)
		if res.Found || err != nil {
			return res, err
		}
	}
	return WakeResult{}, nil
}
