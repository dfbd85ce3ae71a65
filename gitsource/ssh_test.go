package gitsource

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/arbordev/arbor/internal/redact"
)

// sshServer is an in-process SSH server that runs the real git-upload-pack
// for "exec" requests, accepting one client key.
type sshServer struct {
	addr    string
	hostKey ssh.PublicKey
	root    string
}

func newSSHServer(t *testing.T, root string, clientKey ssh.PublicKey) *sshServer {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(clientKey.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &sshServer{addr: ln.Addr().String(), hostKey: hostSigner.PublicKey(), root: root}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn, cfg)
		}
	}()
	return s
}

func (s *sshServer) serve(conn net.Conn, cfg *ssh.ServerConfig) {
	defer conn.Close()
	_, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		go s.session(ch, chReqs)
	}
}

// session runs `git-upload-pack '<path>'` with the channel as its stdio.
func (s *sshServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			req.Reply(false, nil)
			continue
		}
		var msg struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &msg); err != nil {
			req.Reply(false, nil)
			return
		}
		name, arg, _ := strings.Cut(msg.Command, " ")
		path := filepath.Join(s.root, strings.Trim(arg, "'"))
		if name != "git-upload-pack" {
			req.Reply(false, nil)
			return
		}
		req.Reply(true, nil)
		cmd := exec.Command("git", "upload-pack", path)
		cmd.Env = gitEnv()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
		status := uint32(0)
		if err := cmd.Run(); err != nil {
			status = 1
		}
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}

// sshFixture is a repository served over SSH, with client key and
// known_hosts files.
type sshFixture struct {
	srv                      *sshServer
	url, keyFile, knownHosts string
	dir                      string
}

func newSSHFixture(t *testing.T) *sshFixture {
	t.Helper()
	work := newWorkRepo(t)
	root := t.TempDir()
	runGit(t, "", "clone", "-q", "--bare", work.dir, filepath.Join(root, "shop.git"))
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	f := &sshFixture{srv: newSSHServer(t, root, sshPub), dir: t.TempDir()}
	block, err := ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	f.keyFile = f.write(t, "id_ed25519", string(pem.EncodeToMemory(block)))
	f.knownHosts = f.write(t, "known_hosts", knownhosts.Line([]string{knownhosts.Normalize(f.srv.addr)}, f.srv.hostKey)+"\n")
	f.url = fmt.Sprintf("ssh://git@%s/shop.git", f.srv.addr)
	return f
}

func (f *sshFixture) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	writeFile(t, p, content, 0o600)
	return p
}

func (f *sshFixture) open(t *testing.T, a Auth) *Source {
	t.Helper()
	src, err := Open(Options{App: "shop", Repo: f.url, CacheDir: t.TempDir(), Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestSSHListAndFetch(t *testing.T) {
	f := newSSHFixture(t)
	ctx := testCtx(t)
	src := f.open(t, Auth{SSHKeyFile: f.keyFile, KnownHostsFile: f.knownHosts})
	branches, head, err := src.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(branches) != 1 || head != "main" {
		t.Fatalf("ListBranches over SSH = %v, %q", branches, head)
	}
	if err := src.Fetch(ctx, branches); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Tree(ctx, branches["main"]); err != nil {
		t.Fatal(err)
	}
}

func TestSSHHostKeyChecked(t *testing.T) {
	f := newSSHFixture(t)
	ctx := testCtx(t)
	otherPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewPublicKey(otherPub)
	if err != nil {
		t.Fatal(err)
	}
	changed := f.write(t, "known_hosts_changed", knownhosts.Line([]string{knownhosts.Normalize(f.srv.addr)}, other)+"\n")
	unknown := f.write(t, "known_hosts_unknown", knownhosts.Line([]string{"git.example.com"}, f.srv.hostKey)+"\n")
	for name, kh := range map[string]string{"changed host key": changed, "unknown host": unknown} {
		src := f.open(t, Auth{SSHKeyFile: f.keyFile, KnownHostsFile: kh})
		_, _, err := src.ListBranches(ctx)
		var keyErr *knownhosts.KeyError
		if !errors.As(err, &keyErr) {
			t.Errorf("%s: err = %v; want a knownhosts.KeyError", name, err)
		}
	}
	// The helper's callback rejects a wrong key directly, too.
	a := Auth{SSHKeyFile: f.keyFile, KnownHostsFile: changed}
	m, _, err := a.method(mustLocation(t, f.url))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := m.(interface {
		ClientConfig() (*ssh.ClientConfig, error)
	}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := net.ResolveTCPAddr("tcp", f.srv.addr)
	if err := cfg.HostKeyCallback(f.srv.addr, addr, f.srv.hostKey); err == nil {
		t.Error("host key callback accepted a key that known_hosts does not list")
	}
	if err := cfg.HostKeyCallback(f.srv.addr, addr, other); err != nil {
		t.Errorf("host key callback rejected the listed key: %v", err)
	}
}

func TestSSHKeyRejectedAndPassphrase(t *testing.T) {
	f := newSSHFixture(t)
	ctx := testCtx(t)
	_, strangerPriv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(strangerPriv, "", []byte("open sesame"))
	if err != nil {
		t.Fatal(err)
	}
	encrypted := f.write(t, "id_encrypted", string(pem.EncodeToMemory(block)))
	pass := f.write(t, "passphrase", "open sesame\n")

	src := f.open(t, Auth{SSHKeyFile: encrypted, SSHPassphraseFile: pass, KnownHostsFile: f.knownHosts})
	if _, _, err := src.ListBranches(ctx); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("a key the server does not accept: err = %v; want an authentication failure", err)
	} else if strings.Contains(err.Error(), "open sesame") {
		t.Errorf("error leaks the passphrase: %v", err)
	}

	src = f.open(t, Auth{SSHKeyFile: encrypted, KnownHostsFile: f.knownHosts})
	if _, _, err := src.ListBranches(ctx); err == nil || !strings.Contains(err.Error(), "ssh_key_file") {
		t.Errorf("encrypted key without passphrase: err = %v; want an error naming ssh_key_file", err)
	}
}

func mustLocation(t *testing.T, s string) location {
	t.Helper()
	l, err := parseLocation(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestAuthCheck(t *testing.T) {
	const https, scp = "https://git.example.com/a/b.git", "git@git.example.com:a/b.git"
	cases := []struct {
		repo string
		auth Auth
		want string // "" = valid
	}{
		{https, Auth{}, ""},
		{https, Auth{UsernameFile: "u", PasswordFile: "p"}, ""},
		{https, Auth{TokenFile: "t"}, ""},
		{https, Auth{UsernameFile: "u", TokenFile: "t"}, ""},
		{scp, Auth{SSHKeyFile: "k", KnownHostsFile: "kh"}, ""},
		{scp, Auth{SSHKeyFile: "k", SSHPassphraseFile: "p", KnownHostsFile: "kh"}, ""},
		{https, Auth{PasswordFile: "p"}, "password_file needs username_file"},
		{https, Auth{UsernameFile: "u"}, "username_file needs"},
		{https, Auth{TokenFile: "t", PasswordFile: "p"}, "exclusive"},
		{https, Auth{SSHKeyFile: "k", KnownHostsFile: "kh"}, "not an ssh URL"},
		{scp, Auth{UsernameFile: "u", PasswordFile: "p"}, "not an http(s) URL"},
		{scp, Auth{SSHKeyFile: "k"}, "known_hosts_file is required"},
		{scp, Auth{KnownHostsFile: "kh"}, "ssh_key_file is required"},
		{scp, Auth{}, "set ssh_key_file and known_hosts_file"},
		{https, Auth{TokenFile: "t", SSHKeyFile: "k"}, "not both"},
	}
	for _, c := range cases {
		err := c.auth.check(mustLocation(t, c.repo))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s %+v: unexpected error %v", c.repo, c.auth, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s %+v: err = %v, want %q", c.repo, c.auth, err, c.want)
		}
	}
}

func TestAuthFilesErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, "\n", 0o600)
	loc := mustLocation(t, "https://git.example.com/a/b.git")
	if _, _, err := (Auth{TokenFile: empty}).method(loc); err == nil || !strings.Contains(err.Error(), "token_file "+empty+" is empty") {
		t.Errorf("empty token file: %v", err)
	}
	if _, _, err := (Auth{TokenFile: filepath.Join(dir, "missing")}).method(loc); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing token file: %v", err)
	}
	tok := filepath.Join(dir, "tok")
	writeFile(t, tok, "tok-123\n", 0o600)
	m, secrets, err := (Auth{TokenFile: tok}).method(loc)
	if err != nil || fmt.Sprint(secrets) != "[tok-123]" {
		t.Fatalf("token method: %v %v", secrets, err)
	}
	if s := fmt.Sprint(m); strings.Contains(s, "tok-123") {
		t.Errorf("auth method prints the token: %s", s)
	}
	if got := redact.Values(errors.New("bad tok-123 here"), secrets...).Error(); got != "bad xxxxx here" {
		t.Errorf("scrub = %q", got)
	}
}
