// Package gitsource is arbor's only door to git. For each configured app it
// keeps a bare cache of the repository (or reads a local repository in place),
// lists the branches from the remote's ref advertisement, fetches only the
// branches that moved, and serves a commit's tree as an fs.FS straight from the
// object store, with no checkout. It also tells the caller when to look again:
// fsnotify on local repositories, verified webhooks from GitHub, GitLab, Gitea
// or any sender that signs its requests, all coalesced per repository by a
// Trigger.
//
// The package never decides what to deploy or delete; it reports what git
// says, and reports a failed or empty listing as an error so that a caller
// that does nothing special with it deletes nothing.
package gitsource
