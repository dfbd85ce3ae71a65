// Package reconciler is arbor's daemon loop: for every configured app it
// lists the repository's branches, decides which environments should exist,
// and brings each one to its branch's newest commit through the apply engine,
// one worker per environment at a time and a bounded number at once. It
// deletes an environment only after a successful, non-empty listing without
// its branch, or on a delete request through the API (after which the branch
// gets no environment until its next push), and only namespaces arbor
// created for that app.
//
// The cluster and git are the only state: each environment's record lives in
// a ConfigMap in its namespace, read back from a watch-based cache on start.
// The same cache (label-selected metadata informers over the kinds arbor
// renders) makes a no-op resync free of API requests and brings back objects
// edited or deleted by hand.
//
// It also pauses and resumes environments (docs/pausing.md): a paused
// environment is a view of its render with its workloads at zero and its
// Ingresses on a waking route, applied like any other desired state, and
// decided from the cache and an injected clock (API requests, schedules,
// idle time, wake requests from the waking endpoint).
//
// The package also gives the daemon's server (package server) its values and
// actions: metrics, readiness, the JSON status, and the actions on an
// environment (deploy, extend, delete requests; logs).
package reconciler
