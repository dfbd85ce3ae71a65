// Package forge is what arbor does on a git forge (Gitea, GitHub, GitLab) beside
// git itself: it lists a repository's open pull requests (GitLab: merge requests),
// sets a commit status on a head commit, keeps one comment per app on a pull
// request up to date, and reads the forge's webhooks about pull requests and
// pushes.
//
// One small interface, Forge, has one implementation per provider, made by New.
// They share one HTTP helper (client): the token goes in a header and nowhere
// else, answers are read up to a size limit, listings are conditional (ETag /
// If-None-Match, so an unchanged listing costs no rate limit where the forge
// supports it) and errors name the forge, the method, the path and the forge's
// own message. The last rate limit a forge reported is kept for metrics.
//
// Webhooks (webhook.go) are verified before they are parsed: an HMAC-SHA-256
// signature (GitHub, Gitea) or a shared token (GitLab), compared in constant
// time, on a body read up to a bound.
//
// RenderComment writes the pull request comment: the environment's URLs, phase,
// commit and the manifest diff, folded and cut to a size the forges accept.
// The diff it is given must already have Secret values masked (apply's diffs
// do); RedactSecret masks a raw Secret object for callers that hold one.
//
// The package imports nothing of arbor but internal/redact: the reconciler
// decides when to call it, and what a failure means for an environment (it
// never stops or undoes a deploy).
package forge
