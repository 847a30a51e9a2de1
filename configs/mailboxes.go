package configs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/forgetmenot/forgetmenot/internal/mailaddr"
	"github.com/forgetmenot/forgetmenot/router"
)

// Mailbox is one IMAP mailbox customers write to, from the mailboxes file.
type Mailbox struct {
	Name     string
	Host     string
	Port     int
	TLS      string // implicit, starttls or none
	Username string
	Password string // resolved from password, password_file or password_env
	// Auth is password or oauth2; OAuth2 is set with oauth2.
	Auth   string
	OAuth2 *MailboxOAuth2
	// Folder is the IMAP mailbox read (default INBOX).
	Folder string
	// Address is the support address that receives this mail: mail from it
	// gets no automatic reply, and plus-addresses on it name complaints.
	Address      string
	DefaultTeam  string
	PollInterval time.Duration
	MoveTo       string
	Keyword      string
	MaxSize      int64
}

type mailboxesFile struct {
	Mailboxes []mailboxYAML `yaml:"mailboxes"`
}

type mailboxYAML struct {
	Name         string      `yaml:"name"`
	Host         string      `yaml:"host"`
	Port         int         `yaml:"port"`
	TLS          string      `yaml:"tls"`
	Username     string      `yaml:"username"`
	Password     string      `yaml:"password"`
	PasswordFile string      `yaml:"password_file"`
	PasswordEnv  string      `yaml:"password_env"`
	Auth         string      `yaml:"auth"`
	OAuth2       *oauth2YAML `yaml:"oauth2"`
	Mailbox      string      `yaml:"mailbox"`
	Address      string      `yaml:"address"`
	DefaultTeam  string      `yaml:"default_team"`
	PollInterval string      `yaml:"poll_interval"`
	MoveTo       string      `yaml:"move_to"`
	Keyword      string      `yaml:"keyword"`
	MaxSizeMB    int         `yaml:"max_size_mb"`
}

// LoadMailboxes reads and checks the mailboxes file; every default team must
// be a team of the roster. Passwords are read now, so a missing secret fails
// at start.
func LoadMailboxes(path string, dir router.Directory) ([]Mailbox, error) {
	var f mailboxesFile
	doc, err := decodeStrict(path, &f)
	if err != nil {
		return nil, err
	}
	lines, key := itemLines(doc, "mailboxes")
	items := itemNodes(doc, "mailboxes")
	errAt := func(line int, format string, args ...any) error {
		return &fileError{path: path, line: line, msg: fmt.Sprintf(format, args...)}
	}
	if len(f.Mailboxes) == 0 {
		return nil, errAt(key, "no mailboxes declared (mailboxes: [{name: support, host: imap.example.com, ...}])")
	}
	seen := map[string]int{}
	var out []Mailbox
	for i, m := range f.Mailboxes {
		line := lineAt(lines, i)
		who := fmt.Sprintf("mailbox %q", m.Name)
		switch {
		case !idPattern.MatchString(m.Name):
			return nil, errAt(line, "mailbox name %q: use lower-case letters, digits, '.', '_' or '-' (it names the checkpoint)", m.Name)
		case seen[m.Name] != 0:
			return nil, errAt(line, "%s is declared twice (first on line %d)", who, seen[m.Name])
		case m.Host == "":
			return nil, errAt(line, "%s: host is required", who)
		case m.Username == "":
			return nil, errAt(line, "%s: username is required", who)
		case strings.ContainsFunc(m.Username, unicode.IsControl):
			return nil, errAt(line, "%s: username has control characters", who)
		case m.TLS != "" && !oneOf(m.TLS, "implicit", "starttls", "none"):
			return nil, errAt(line, "%s: tls %q: use implicit (port 993), starttls (port 143) or none (local servers only)", who, m.TLS)
		case m.Port < 0 || m.Port > 65535:
			return nil, errAt(line, "%s: port %d is not a port", who, m.Port)
		case m.MaxSizeMB < 0:
			return nil, errAt(line, "%s: max_size_mb must not be negative", who)
		case m.Address != "" && !mailaddr.Valid(m.Address):
			return nil, errAt(line, "%s: address %q is not a valid e-mail address", who, m.Address)
		case m.DefaultTeam == "":
			return nil, errAt(line, "%s: default_team is required: the team for mail no routing rule claims", who)
		}
		if _, ok := dir.Team(m.DefaultTeam); !ok {
			return nil, errAt(line, "%s: default_team %q is not a team in the owners file", who, m.DefaultTeam)
		}
		seen[m.Name] = line
		mb := Mailbox{
			Name: m.Name, Host: m.Host, Port: m.Port, TLS: m.TLS, Username: m.Username, Folder: m.Mailbox,
			Address: strings.ToLower(m.Address), DefaultTeam: m.DefaultTeam, MoveTo: m.MoveTo, Keyword: m.Keyword,
			MaxSize: int64(m.MaxSizeMB) << 20,
		}
		if mb.TLS == "" {
			mb.TLS = "implicit"
		}
		if mb.Folder == "" {
			mb.Folder = "INBOX"
		}
		if mb.Port == 0 {
			mb.Port = map[string]int{"implicit": 993, "starttls": 143, "none": 143}[mb.TLS]
		}
		if m.PollInterval != "" {
			var d Duration
			if err := d.Decode(m.PollInterval); err != nil || d.D() < time.Second {
				return nil, errAt(line, "%s: poll_interval %q: use a duration of at least 1s, like 60s or 5m", who, m.PollInterval)
			}
			mb.PollInterval = d.D()
		}
		mb.Auth, mb.Password, mb.OAuth2, err = mailboxAuth(m)
		if err != nil {
			var fe *fieldError
			if errors.As(err, &fe) && i < len(items) {
				line = fieldLine(items[i], fe.field)
				if fe.at != "" && line == items[i].Line {
					line = fieldLine(items[i], fe.at)
				}
			}
			return nil, errAt(line, "%s: %v", who, err)
		}
		out = append(out, mb)
	}
	return out, nil
}

func mailboxPassword(m mailboxYAML) (string, error) {
	set := 0
	for _, v := range []string{m.Password, m.PasswordFile, m.PasswordEnv} {
		if v != "" {
			set++
		}
	}
	switch {
	case set == 0:
		return "", fmt.Errorf("give one of password, password_file or password_env")
	case set > 1:
		return "", fmt.Errorf("give only one of password, password_file or password_env")
	case m.PasswordFile != "":
		return ReadSecretFile(m.PasswordFile)
	case m.PasswordEnv != "":
		v := os.Getenv(m.PasswordEnv)
		if v == "" {
			return "", fmt.Errorf("password_env: %s is not set", m.PasswordEnv)
		}
		return v, nil
	}
	return m.Password, nil
}

// ReadSecretFile reads a secret such as a password file, without the
// trailing newline editors add.
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the password file: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("password file %s is empty", path)
	}
	return s, nil
}
