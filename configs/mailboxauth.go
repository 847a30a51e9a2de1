package configs

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/forgetmenot/forgetmenot/internal/mailauth"
	"go.yaml.in/yaml/v3"
)

// Mailbox sign-in methods (the `auth` field).
const (
	AuthPassword = "password"
	AuthOAuth2   = "oauth2"
)

// MailboxOAuth2 is where a mailbox's OAuth 2.0 access tokens come from, with
// its secrets read from their files or environment variables: the type the
// e-mail channel takes.
type MailboxOAuth2 = mailauth.OAuth2

// oauth2YAML is the `oauth2:` block of a mailbox. Secrets come only from
// files or the environment: a secret typed into this file ends up in
// backups and version control.
type oauth2YAML struct {
	Provider           string   `yaml:"provider"`
	Mechanism          string   `yaml:"mechanism"`
	TokenURL           string   `yaml:"token_url"`
	Scopes             []string `yaml:"scopes"`
	Tenant             string   `yaml:"tenant"`
	ClientID           string   `yaml:"client_id"`
	ClientSecretFile   string   `yaml:"client_secret_file"`
	ClientSecretEnv    string   `yaml:"client_secret_env"`
	CertificateFile    string   `yaml:"certificate_file"`
	PrivateKeyFile     string   `yaml:"private_key_file"`
	ServiceAccountFile string   `yaml:"service_account_file"`
	Subject            string   `yaml:"subject"`
	RefreshTokenFile   string   `yaml:"refresh_token_file"`
	RefreshTokenEnv    string   `yaml:"refresh_token_env"`
}

// fieldError is a problem with one field of a mailbox.
type fieldError struct {
	field string // "oauth2.client_id"
	msg   string
	// at is the field whose line to show when field itself is absent.
	at string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func bad(field, format string, args ...any) error {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

// mailboxAuth checks a mailbox's sign-in settings and reads its secrets.
func mailboxAuth(m mailboxYAML) (auth, password string, o *MailboxOAuth2, err error) {
	switch m.Auth {
	case "", AuthPassword:
		if m.OAuth2 != nil {
			return "", "", nil, bad("oauth2", "is set but auth is %s: add `auth: oauth2` to sign in with it", AuthPassword)
		}
		password, err = mailboxPassword(m)
		return AuthPassword, password, nil, err
	case AuthOAuth2:
	default:
		return "", "", nil, bad("auth", "%q: use password or oauth2", m.Auth)
	}
	for field, v := range map[string]string{"password": m.Password, "password_file": m.PasswordFile, "password_env": m.PasswordEnv} {
		if v != "" {
			return "", "", nil, bad(field, "is not used with auth: oauth2; remove it")
		}
	}
	if m.OAuth2 == nil {
		e := bad("oauth2", "is required with auth: oauth2 (provider: microsoft, google or refresh_token, and its settings)").(*fieldError)
		e.at = "auth"
		return "", "", nil, e
	}
	o, err = loadOAuth2(*m.OAuth2, m.Username)
	return AuthOAuth2, "", o, err
}

func loadOAuth2(y oauth2YAML, username string) (*MailboxOAuth2, error) {
	o := &MailboxOAuth2{Provider: y.Provider, Mechanism: strings.ToLower(y.Mechanism), TokenURL: y.TokenURL, Scopes: y.Scopes,
		Tenant: y.Tenant, ClientID: y.ClientID, Subject: y.Subject}
	if o.Mechanism != "" && !oneOf(o.Mechanism, "xoauth2", "oauthbearer") {
		return nil, bad("oauth2.mechanism", "%q: use xoauth2 (Microsoft 365, Gmail) or oauthbearer (RFC 7628)", y.Mechanism)
	}
	if y.TokenURL != "" {
		if err := checkTokenURL(y.TokenURL); err != nil {
			return nil, bad("oauth2.token_url", "%v", err)
		}
	}
	for i, s := range y.Scopes {
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\r\n") {
			return nil, bad("oauth2.scopes", "scope %d %q: one scope per item, without spaces", i+1, s)
		}
	}
	// Fields that belong to another provider are a mistake worth naming.
	unused := func(fields map[string]string) error {
		for f, v := range fields {
			if v != "" {
				return bad("oauth2."+f, "is not used by provider %s; remove it", y.Provider)
			}
		}
		return nil
	}
	var err error
	switch y.Provider {
	case "microsoft":
		if err := unused(map[string]string{"service_account_file": y.ServiceAccountFile, "subject": y.Subject,
			"refresh_token_file": y.RefreshTokenFile, "refresh_token_env": y.RefreshTokenEnv}); err != nil {
			return nil, err
		}
		switch {
		case y.Tenant == "" && y.TokenURL == "":
			return nil, bad("oauth2.tenant", "is required: the directory (tenant) id or primary domain of your Microsoft 365 organisation")
		case y.ClientID == "":
			return nil, bad("oauth2.client_id", "is required: the application (client) id of the app registration")
		case len(y.Scopes) > 1 || (len(y.Scopes) == 1 && !strings.HasSuffix(y.Scopes[0], "/.default")):
			return nil, bad("oauth2.scopes", "an app's client credentials take one scope ending in /.default, like https://outlook.office365.com/.default")
		}
		secret := y.ClientSecretFile != "" || y.ClientSecretEnv != ""
		cert := y.CertificateFile != "" || y.PrivateKeyFile != ""
		switch {
		case secret && cert:
			return nil, bad("oauth2.certificate_file", "give a client secret or a certificate, not both")
		case cert:
			if y.CertificateFile == "" {
				return nil, bad("oauth2.certificate_file", "is required with private_key_file")
			}
			if y.PrivateKeyFile == "" {
				return nil, bad("oauth2.private_key_file", "is required with certificate_file")
			}
			if o.CertificatePEM, err = readFileField("oauth2.certificate_file", y.CertificateFile); err != nil {
				return nil, err
			}
			if o.PrivateKeyPEM, err = readFileField("oauth2.private_key_file", y.PrivateKeyFile); err != nil {
				return nil, err
			}
		default:
			if o.ClientSecret, err = secretField("oauth2.client_secret", y.ClientSecretFile, y.ClientSecretEnv, true); err != nil {
				return nil, err
			}
			o.ClientSecretFile = y.ClientSecretFile
		}
	case "google":
		if err := unused(map[string]string{"tenant": y.Tenant, "client_id": y.ClientID, "client_secret_file": y.ClientSecretFile,
			"client_secret_env": y.ClientSecretEnv, "certificate_file": y.CertificateFile, "private_key_file": y.PrivateKeyFile,
			"refresh_token_file": y.RefreshTokenFile, "refresh_token_env": y.RefreshTokenEnv}); err != nil {
			return nil, err
		}
		if y.ServiceAccountFile == "" {
			return nil, bad("oauth2.service_account_file", "is required: the service account's JSON key (with domain-wide delegation for https://mail.google.com/)")
		}
		if o.ServiceAccountJSON, err = readFileField("oauth2.service_account_file", y.ServiceAccountFile); err != nil {
			return nil, err
		}
		var key struct {
			Type        string `json:"type"`
			ClientEmail string `json:"client_email"`
			PrivateKey  string `json:"private_key"`
		}
		if json.Unmarshal(o.ServiceAccountJSON, &key) != nil || key.Type != "service_account" || key.ClientEmail == "" || key.PrivateKey == "" {
			return nil, bad("oauth2.service_account_file", "%s is not a service account JSON key (type service_account, with client_email and private_key)", y.ServiceAccountFile)
		}
		if o.Subject == "" {
			o.Subject = username
		}
	case "refresh_token":
		if err := unused(map[string]string{"tenant": y.Tenant, "service_account_file": y.ServiceAccountFile, "subject": y.Subject,
			"certificate_file": y.CertificateFile, "private_key_file": y.PrivateKeyFile}); err != nil {
			return nil, err
		}
		switch {
		case y.TokenURL == "":
			return nil, bad("oauth2.token_url", "is required for provider refresh_token: the provider's token endpoint")
		case y.ClientID == "":
			return nil, bad("oauth2.client_id", "is required for provider refresh_token")
		}
		// Public clients have no secret.
		if o.ClientSecret, err = secretField("oauth2.client_secret", y.ClientSecretFile, y.ClientSecretEnv, false); err != nil {
			return nil, err
		}
		o.ClientSecretFile = y.ClientSecretFile
		if o.RefreshToken, err = secretField("oauth2.refresh_token", y.RefreshTokenFile, y.RefreshTokenEnv, true); err != nil {
			return nil, err
		}
	case "":
		return nil, bad("oauth2.provider", "is required: microsoft, google or refresh_token")
	default:
		return nil, bad("oauth2.provider", "%q: use microsoft, google or refresh_token", y.Provider)
	}
	return o, nil
}

// checkTokenURL allows https, and http only to this machine (tests, a local
// proxy): a token request carries the client's secret.
func checkTokenURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL", raw)
	}
	if u.User != nil {
		return fmt.Errorf("give the client's secret as client_secret_file or client_secret_env, not in the URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return fmt.Errorf("%q: use https (http only to localhost): the request carries the app's secret", raw)
}

// secretField reads a secret given as name_file or name_env (exactly one;
// none is allowed when not required).
func secretField(name, file, env string, required bool) (string, error) {
	switch {
	case file != "" && env != "":
		short := name[strings.LastIndex(name, ".")+1:]
		return "", bad(name+"_env", "give %s_file or %s_env, not both", short, short)
	case file != "":
		b, err := readFileField(name+"_file", file)
		return strings.TrimRight(string(b), "\r\n"), err
	case env != "":
		v := os.Getenv(env)
		if v == "" {
			return "", bad(name+"_env", "%s is not set", env)
		}
		return v, nil
	case required:
		short := name[strings.LastIndex(name, ".")+1:]
		return "", bad(name+"_file", "give %s_file (a file holding only the secret) or %s_env (an environment variable holding it)", short, short)
	}
	return "", nil
}

func readFileField(field, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, bad(field, "%v", err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return nil, bad(field, "%s is empty", path)
	}
	return b, nil
}

// fieldLine is the line of a field (like "oauth2.client_id") inside a
// sequence item, or of the item itself when the field is absent.
func fieldLine(item *yaml.Node, field string) int {
	if item == nil {
		return 0
	}
	node, line := item, item.Line
	for _, key := range strings.Split(field, ".") {
		if node.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(node.Content); i += 2 {
			if node.Content[i].Value == key {
				line, node, found = node.Content[i].Line, node.Content[i+1], true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

// itemNodes returns the items of the top-level sequence key.
func itemNodes(doc *yaml.Node, key string) []*yaml.Node {
	if doc == nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1].Content
		}
	}
	return nil
}
