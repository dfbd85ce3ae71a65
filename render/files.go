package render

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/arbordev/arbor/internal/repofs"
	"github.com/arbordev/arbor/schema"
)

// maxConfigMapBytes is what the API server accepts in one ConfigMap.
const maxConfigMapBytes = 1 << 20

// serviceFiles turns a service's configmap entries into ConfigMaps named
// "<service>-<name>", with volumes and mounts in p. A repo_path naming a file
// is mounted as that file at mount_path; a directory's files (not its
// subdirectories) are mounted in the directory mount_path. It returns a hash
// of the files' content.
func (r *renderer) serviceFiles(a *app, s *schema.Service, labels map[string]string, p *podParts) (string, error) {
	if len(s.ConfigMap) == 0 {
		return "", nil
	}
	h := sha256.New()
	for i, cm := range s.ConfigMap {
		field := fmt.Sprintf("configmap[%d]", i)
		if cm.Name == "" || cm.MountPath == "" || cm.RepoPath == "" {
			return "", fmt.Errorf("%s: name, mount_path and repo_path are required", field)
		}
		files, isDir, err := readRepoPath(a.tree, cm.RepoPath, maxConfigMapBytes)
		if errors.Is(err, repofs.ErrTooLarge) {
			return "", fmt.Errorf("%s.repo_path %q: the files exceed the %s a ConfigMap holds: %w", field, cm.RepoPath, repofs.FormatSize(maxConfigMapBytes), err)
		}
		if err != nil {
			return "", fmt.Errorf("%s.repo_path %q: %w", field, cm.RepoPath, err)
		}
		name := dnsLabel(s.Name+"-"+cm.Name, 63)
		o := r.newObject(a, "v1", "ConfigMap", name, labels)
		data, binary := map[string]any{}, map[string]any{}
		var keys []string
		for _, f := range files {
			if !validKey(f.name) {
				return "", fmt.Errorf("%s.repo_path %q: file name %q cannot be a ConfigMap key", field, cm.RepoPath, f.name)
			}
			keys = append(keys, f.name)
			h.Write([]byte(name + "/" + f.name))
			h.Write(f.data)
			if utf8.Valid(f.data) {
				data[f.name] = string(f.data)
			} else {
				binary[f.name] = base64.StdEncoding.EncodeToString(f.data)
			}
		}
		if len(data) > 0 {
			o["data"] = data
		}
		if len(binary) > 0 {
			o["binaryData"] = binary
		}
		r.add(o, "")
		vol := volumeName("cm-" + cm.Name)
		p.volumes = append(p.volumes, obj{"name": vol, "configMap": obj{"name": name}})
		mount := obj{"name": vol, "mountPath": cm.MountPath, "readOnly": true}
		if !isDir {
			mount["subPath"] = keys[0]
		}
		p.mounts = append(p.mounts, mount)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

type repoFile struct {
	name string
	data []byte
}

// readRepoPath reads a file, or the regular files directly in a directory,
// from the branch's tree, at most limit bytes in all. Paths are relative to
// the repository root and may not leave it. Files are read with
// repofs.ReadFile: a link out of the repository, a special file or one past
// what is left of the limit is refused before it is read.
func readRepoPath(tree fs.FS, p string, limit int64) ([]repoFile, bool, error) {
	if tree == nil {
		return nil, false, errors.New("no repository tree to read from")
	}
	clean := path.Clean(strings.TrimPrefix(strings.TrimPrefix(p, "./"), "/"))
	if clean == ".." || strings.HasPrefix(clean, "../") || !fs.ValidPath(clean) {
		return nil, false, errors.New("path leaves the repository")
	}
	st, err := fs.Stat(tree, clean)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, errors.New("no such file or directory in the repository")
		}
		return nil, false, err
	}
	if !st.IsDir() {
		b, err := repofs.ReadFile(tree, clean, limit)
		if err != nil {
			return nil, false, err
		}
		return []repoFile{{name: path.Base(clean), data: b}}, false, nil
	}
	entries, err := fs.ReadDir(tree, clean)
	if err != nil {
		return nil, true, err
	}
	var out []repoFile
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := repofs.ReadFile(tree, path.Join(clean, e.Name()), limit)
		if err != nil {
			return nil, true, err
		}
		limit -= int64(len(b))
		out = append(out, repoFile{name: e.Name(), data: b})
	}
	if len(out) == 0 {
		return nil, true, errors.New("directory has no files")
	}
	return out, true, nil
}
