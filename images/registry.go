package images

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// registry looks images up with go-containerregistry.
type registry struct {
	creds     *Credentials
	plainHTTP bool
}

// parse parses an image reference, over plain HTTP when the registry is
// configured so.
func (r registry) parse(ref string) (name.Reference, error) {
	var opts []name.Option
	if r.plainHTTP {
		opts = append(opts, name.Insecure)
	}
	return name.ParseReference(ref, opts...)
}

// digest returns the digest of the manifest ref names, and found=false when
// the registry answers that it does not have it.
func (r registry) digest(ctx context.Context, ref name.Reference) (digest string, found bool, err error) {
	desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(r.creds))
	if err != nil {
		if notFound(err) {
			return "", false, nil
		}
		return "", false, redactErr(fmt.Errorf("look up %s: %w", ref, err), r.creds)
	}
	return desc.Digest.String(), true, nil
}

// notFound reports whether a registry error says the manifest or repository
// does not exist (a HEAD carries no error body: the status says it).
func notFound(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	if terr.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range terr.Errors {
		if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}

// pinned is the repository of ref with digest: what a workload pulls.
func pinned(ref name.Reference, digest string) string {
	return ref.Context().Name() + "@" + digest
}
