package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/arbordev/arbor/reconciler"
	"github.com/arbordev/arbor/server"
)

// envRoutes adds the environment actions of the API (docs/api.md) to
// routes, translating the reconciler's errors into the server's.
func envRoutes(rec *reconciler.Fleet, routes *server.Routes) {
	routes.Environment = func(app, env string) (any, error) {
		st, ok := rec.Environment(app, env)
		if !ok {
			return nil, fmt.Errorf("app %s has no environment %s: %w", app, env, server.ErrNotFound)
		}
		return st, nil
	}
	routes.Extend = func(ctx context.Context, app, env string, by time.Duration) (any, error) {
		v, err := rec.Extend(ctx, app, env, by)
		return v, apiError(err)
	}
	routes.Delete = func(ctx context.Context, app, env string) (any, error) {
		by := ""
		if c := server.CallerOf(ctx); c != nil {
			by = c.User
		}
		v, err := rec.Delete(ctx, app, env, by)
		return v, apiError(err)
	}
	routes.Logs = func(ctx context.Context, app, env string, q server.LogQuery, w io.Writer) error {
		return apiError(rec.Logs(ctx, app, env, reconciler.LogRequest{
			Kind: q.Kind, Name: q.Name, Container: q.Container, Tail: q.Tail, LimitBytes: q.LimitBytes, Follow: q.Follow,
		}, w))
	}
	routes.Pause = func(ctx context.Context, app, env string, paused bool) (any, error) {
		v, err := rec.SetPaused(ctx, app, env, paused)
		return v, apiError(err)
	}
}

// apiError gives the reconciler's errors the server's status codes.
func apiError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, reconciler.ErrNoEnvironment), errors.Is(err, reconciler.ErrNoLogs):
		return fmt.Errorf("%w: %w", server.ErrNotFound, err)
	case errors.Is(err, reconciler.ErrNeverExpires), errors.Is(err, reconciler.ErrNotAdopted):
		return fmt.Errorf("%w: %w", server.ErrConflict, err)
	case errors.Is(err, reconciler.ErrTooLong):
		return fmt.Errorf("%w: %w", server.ErrInvalid, err)
	}
	return err
}
