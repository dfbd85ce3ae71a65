package gitsource

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// Auth names the files holding a repository's credentials. Files are read
// at every listing and fetch, so a rotated Secret mounted as files takes
// effect without a restart. Surrounding whitespace (a trailing newline) is
// trimmed from every value. Set at most one kind:
//
//   - HTTPS basic: UsernameFile and PasswordFile.
//   - HTTPS token: TokenFile; sent as basic auth with the token as password
//     and the username from UsernameFile, or "x-access-token" without it
//     (GitHub, Gitea and GitLab accept any non-empty username with a token).
//   - SSH: SSHKeyFile (a private key, PEM or OpenSSH format), optional
//     SSHPassphraseFile, and KnownHostsFile, which is required: the server's
//     host key is always checked against it.
type Auth struct {
	UsernameFile      string `yaml:"username_file,omitempty" json:"username_file,omitempty"`
	PasswordFile      string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	TokenFile         string `yaml:"token_file,omitempty" json:"token_file,omitempty"`
	SSHKeyFile        string `yaml:"ssh_key_file,omitempty" json:"ssh_key_file,omitempty"`
	SSHPassphraseFile string `yaml:"ssh_passphrase_file,omitempty" json:"ssh_passphrase_file,omitempty"`
	KnownHostsFile    string `yaml:"known_hosts_file,omitempty" json:"known_hosts_file,omitempty"`
}

// defaultTokenUser is the username sent with a token when none is given.
const defaultTokenUser = "x-access-token"

func (a Auth) isHTTP() bool { return a.UsernameFile != "" || a.PasswordFile != "" || a.TokenFile != "" }
func (a Auth) isSSH() bool {
	return a.SSHKeyFile != "" || a.SSHPassphraseFile != "" || a.KnownHostsFile != ""
}

// check validates the combination of files against the repository address,
// without reading any file.
func (a Auth) check(loc location) error {
	switch {
	case a.isHTTP() && a.isSSH():
		return errors.New("auth: set either HTTPS (username_file/password_file/token_file) or SSH (ssh_key_file/known_hosts_file) files, not both")
	case a.TokenFile != "" && a.PasswordFile != "":
		return errors.New("auth: token_file and password_file are exclusive")
	case a.PasswordFile != "" && a.UsernameFile == "":
		return errors.New("auth: password_file needs username_file")
	case a.UsernameFile != "" && a.PasswordFile == "" && a.TokenFile == "":
		return errors.New("auth: username_file needs password_file or token_file")
	case a.isHTTP() && (loc.ssh || loc.local):
		return fmt.Errorf("auth: HTTPS credentials given for %s, which is not an http(s) URL", loc)
	case a.isSSH() && !loc.ssh:
		return fmt.Errorf("auth: SSH credentials given for %s, which is not an ssh URL", loc)
	case a.isSSH() && a.SSHKeyFile == "":
		return errors.New("auth: ssh_key_file is required for SSH")
	case a.isSSH() && a.KnownHostsFile == "":
		return errors.New("auth: known_hosts_file is required for SSH (host keys are always verified)")
	case loc.ssh && !a.isSSH():
		return fmt.Errorf("auth: %s is an SSH address; set ssh_key_file and known_hosts_file", loc)
	}
	return nil
}

// method reads the files and builds the go-git auth method, or nil when the
// repository needs none. It also returns the secret values read, so that
// errors can be scrubbed of them.
func (a Auth) method(loc location) (transport.AuthMethod, []string, error) {
	switch {
	case a.isSSH():
		return a.sshMethod(loc)
	case a.TokenFile != "":
		token, err := readSecret("token_file", a.TokenFile)
		if err != nil {
			return nil, nil, err
		}
		user := defaultTokenUser
		if a.UsernameFile != "" {
			if user, err = readSecret("username_file", a.UsernameFile); err != nil {
				return nil, nil, err
			}
		}
		return &githttp.BasicAuth{Username: user, Password: token}, []string{token}, nil
	case a.PasswordFile != "":
		user, err := readSecret("username_file", a.UsernameFile)
		if err != nil {
			return nil, nil, err
		}
		pass, err := readSecret("password_file", a.PasswordFile)
		if err != nil {
			return nil, nil, err
		}
		return &githttp.BasicAuth{Username: user, Password: pass}, []string{pass}, nil
	}
	return nil, nil, nil
}

func (a Auth) sshMethod(loc location) (transport.AuthMethod, []string, error) {
	var passphrase string
	var secrets []string
	if a.SSHPassphraseFile != "" {
		p, err := readSecret("ssh_passphrase_file", a.SSHPassphraseFile)
		if err != nil {
			return nil, nil, err
		}
		passphrase, secrets = p, []string{p}
	}
	pem, err := os.ReadFile(a.SSHKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: ssh_key_file: %w", err)
	}
	ep, err := transport.NewEndpoint(loc.raw)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: %s: %w", loc, err)
	}
	user := ep.User
	if user == "" {
		user = "git"
	}
	keys, err := gitssh.NewPublicKeys(user, pem, passphrase)
	if err != nil {
		// The ssh package's messages name the problem, never the key.
		return nil, nil, fmt.Errorf("auth: ssh_key_file %s: %w", a.SSHKeyFile, err)
	}
	if _, err := os.Stat(a.KnownHostsFile); err != nil {
		return nil, nil, fmt.Errorf("auth: known_hosts_file: %w", err)
	}
	db, err := gitssh.NewKnownHostsDb(a.KnownHostsFile)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: known_hosts_file %s: %w", a.KnownHostsFile, err)
	}
	port := ep.Port
	if port == 0 {
		port = 22
	}
	keys.HostKeyCallbackHelper = gitssh.HostKeyCallbackHelper{
		HostKeyCallback:   db.HostKeyCallback(),
		HostKeyAlgorithms: db.HostKeyAlgorithms(net.JoinHostPort(ep.Host, strconv.Itoa(port))),
	}
	return keys, secrets, nil
}

// readSecret reads one credential file. Its errors name the file, never the
// content.
func readSecret(field, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("auth: %s: %w", field, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("auth: %s %s is empty", field, path)
	}
	return v, nil
}
