// Package gitsource is arbor's only door to git. For each configured app it
// keeps a bare cache of the repository (or reads a local repository in place),
// lists the branches from the remote's ref advertisement, fetches only the
// branches that moved, and serves a commit's tree as an fs.FS straight from the
// object store, with no checkout. It also tells the caller when to look again:
// fsnotify on local repositories, verified webhooks from GitHub, GitLab, Gitea
// or any sender that signs its requests, all coalesced per repository by a
// Trigger.
//
// A daemon drives one Source per app, roughly:
//
//	metrics := gitsource.NewMetrics() // metrics.Register(registry) once
//	src, err := gitsource.Open(gitsource.Options{
//		App: "shop", Repo: repoURL, CacheDir: cacheDir, Auth: auth, Depth: 1, Metrics: metrics,
//	})
//	err = src.Watch(ctx) // local paths: fsnotify fires src.Trigger(); remotes: no-op
//	hooks := gitsource.NewWebhooks(gitsource.WebhookOptions{Secret: secret, Metrics: metrics})
//	hooks.SetSources(allSources) // mux.Handle("/hooks/", hooks)
//	for {
//		branches, defaultBranch, err := src.ListBranches(ctx)
//		// err != nil (ErrNoBranches included): record it, delete nothing.
//		err = src.Fetch(ctx, wanted) // wanted ⊆ branches; no request if nothing moved
//		tree, err := src.Tree(ctx, wanted["main"]) // fs.FS of that commit
//		select {
//		case <-src.Trigger().C(): // webhook or local change
//		case <-ticker.C: // poll_interval
//		case <-ctx.Done():
//			return
//		}
//	}
//
// Every listing and fetch of a remote is bounded in time (Options.Timeout)
// and every fetch in the pack data it may receive (Options.MaxFetchSize):
// a server that stalls or sends too much gives an error (ErrTimeout,
// ErrTooLarge), not a hung loop or a full disk.
//
// The package never decides what to deploy or delete; it reports what git
// says, and reports a failed or empty listing as an error so that a caller
// that does nothing special with it deletes nothing.
package gitsource
