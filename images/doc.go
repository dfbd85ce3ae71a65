// Package images gets the container images of an environment's services into a
// registry, and pins them by digest, in one of two modes.
//
// Build mode (Builder): arbor builds each image itself with a BuildKit daemon,
// from the commit tree it already has, and pushes it. A branch controls the
// Dockerfile and the build context, so every build is bounded: a time limit, a
// context size cap, no network for RUN steps, base images only from the
// registries the daemon config allows (checked in the Dockerfile with
// BuildKit's own parser, and enforced again by a BuildKit source policy), no
// URL or git sources, no `# syntax=` frontends, no symbolic links out of the
// context. An image is tagged by a content key of its build inputs (see Key),
// looked up in the registry before building, and concurrent requests for one
// key share one build, so an unchanged service is never built twice.
//
// External mode (Waiter): CI builds and pushes; arbor waits until the image
// exists in the registry, polling with backoff and woken at once by the
// registry's notifications (NotificationHandler), until a deadline.
//
// The package reads nothing from git and writes nothing to the cluster: the
// caller hands it a file system and gets back references pinned by digest.
package images
