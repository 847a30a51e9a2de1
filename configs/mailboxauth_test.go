package configs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/configs"
)

// writeFiles writes name → content into a temp dir; "{{dir}}" in contents
// becomes that dir.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.ReplaceAll(content, "{{dir}}", dir)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const mailboxHead = `mailboxes:
  - name: support
    host: outlook.office365.com
    username: support@winkel.example
    default_team: support-nl
`

// TestOAuth2MailboxesLoad: each provider's settings load with their secrets
// read from files or the environment.
func TestOAuth2MailboxesLoad(t *testing.T) {
	roster, err := configs.LoadRoster("owners.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_REFRESH_TOKEN", "rt-from-env")
	dir := writeFiles(t, map[string]string{
		"secret":   "client-secret-from-file\n",
		"sa.json":  `{"type": "service_account", "client_email": "r@p.iam.gserviceaccount.com", "private_key": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n"}`,
		"cert.pem": "CERT", "key.pem": "KEY",
		"microsoft.yaml": mailboxHead + `    auth: oauth2
    oauth2:
      provider: microsoft
      tenant: contoso.onmicrosoft.com
      client_id: 11111111-2222-3333-4444-555555555555
      client_secret_file: {{dir}}/secret
`,
		"cert.yaml": mailboxHead + `    auth: oauth2
    oauth2:
      provider: microsoft
      tenant: contoso.onmicrosoft.com
      client_id: app
      certificate_file: {{dir}}/cert.pem
      private_key_file: {{dir}}/key.pem
`,
		"google.yaml": mailboxHead + `    auth: oauth2
    oauth2:
      provider: google
      mechanism: oauthbearer
      service_account_file: {{dir}}/sa.json
`,
		"refresh.yaml": mailboxHead + `    auth: oauth2
    oauth2:
      provider: refresh_token
      token_url: https://login.example.com/token
      client_id: thunderbird
      refresh_token_env: TEST_REFRESH_TOKEN
      scopes: [https://outlook.office365.com/IMAP.AccessAsUser.All, offline_access]
`,
	})
	load := func(name string) configs.Mailbox {
		boxes, err := configs.LoadMailboxes(filepath.Join(dir, name), roster)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if boxes[0].Auth != configs.AuthOAuth2 || boxes[0].OAuth2 == nil || boxes[0].Password != "" {
			t.Fatalf("%s: %+v", name, boxes[0])
		}
		return boxes[0]
	}
	if o := load("microsoft.yaml").OAuth2; o.Provider != "microsoft" || o.ClientSecret != "client-secret-from-file" || o.Tenant != "contoso.onmicrosoft.com" ||
		o.ClientSecretFile != filepath.Join(dir, "secret") { // read again for each token (rotation)
		t.Errorf("microsoft: %+v", o)
	}
	if o := load("cert.yaml").OAuth2; string(o.CertificatePEM) != "CERT" || string(o.PrivateKeyPEM) != "KEY" {
		t.Errorf("certificate: %+v", o)
	}
	if o := load("google.yaml").OAuth2; o.Subject != "support@winkel.example" || o.Mechanism != "oauthbearer" || len(o.ServiceAccountJSON) == 0 {
		t.Errorf("google: the subject defaults to the username: %+v", o)
	}
	if o := load("refresh.yaml").OAuth2; o.RefreshToken != "rt-from-env" || len(o.Scopes) != 2 {
		t.Errorf("refresh: %+v", o)
	}
}

// TestBadOAuth2MailboxesNameFieldAndLine: each mistake names the file, the
// line of the field and the field.
func TestBadOAuth2MailboxesNameFieldAndLine(t *testing.T) {
	roster, err := configs.LoadRoster("owners.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_EMPTY_SECRET", "")
	cases := []struct{ name, yaml, want string }{
		{"unknown auth", mailboxHead + "    auth: kerberos\n", `:6: mailbox "support": auth: "kerberos": use password or oauth2`},
		{"oauth2 without block", mailboxHead + "    auth: oauth2\n", `:6: mailbox "support": oauth2: is required with auth: oauth2`},
		{"oauth2 block without auth", mailboxHead + "    password: x\n    oauth2:\n      provider: google\n", `:7: mailbox "support": oauth2: is set but auth is password`},
		{"password with oauth2", mailboxHead + "    auth: oauth2\n    password_file: /run/secrets/x\n    oauth2:\n      provider: google\n", `:7: mailbox "support": password_file: is not used with auth: oauth2`},
		{"no provider", mailboxHead + "    auth: oauth2\n    oauth2:\n      client_id: x\n", `:7: mailbox "support": oauth2.provider: is required`},
		{"unknown provider", mailboxHead + "    auth: oauth2\n    oauth2:\n      provider: yahoo\n", `:8: mailbox "support": oauth2.provider: "yahoo"`},
		{"microsoft without client id", mailboxHead + "    auth: oauth2\n    oauth2:\n      provider: microsoft\n      tenant: contoso\n", `:7: mailbox "support": oauth2.client_id: is required`},
		{"microsoft secret inline is a typo", mailboxHead + "    auth: oauth2\n    oauth2:\n      provider: microsoft\n      tenant: t\n      client_id: c\n      client_secret: hunter2\n", `:11: unknown field "client_secret"`},
		{"microsoft secret env empty", mailboxHead + "    auth: oauth2\n    oauth2:\n      provider: microsoft\n      tenant: t\n      client_id: c\n      client_secret_env: TEST_EMPTY_SECRET\n", `:11: mailbox "support": oauth2.client_secret_env: TEST_EMPTY_SECRET is not set`},
		{"microsoft secret file missing", mailboxHead + "    auth: oauth2\n    oauth2:\n      provider: microsoft\n      tenant: t\n      client_id: c\n      client_secret_file: /nonexistent/secret\n", `:11: mailbox "support": oauth2.client_secret_file: open /nonexistent/secret`},
		{"microsoft secret and certificate", mailboxHead + "    auth: oauth2\n    oauth2:\n      provider: microsoft\n      tenant: t\n      client_id: c\n      client_secret_env: X\n      certificate_file: /c\n", `:12: mailbox "support": oauth2.certificate_file: give a client secret or a certificate, not both`},
		{"microsoft delegated scope", mailboxHead + "    auth: oauth2\n    oauth2:\n      provider: microsoft\n      tenant: t\n      client_id: c\n      scopes: [https://outlook.office365.com/IMAP.AccessAsUser.All]\n", `:11: mailbox "support": oauth2.scopes: an app's client credentials take one scope ending in /.default`},
		{"certificate without key", mailboxHead + "    auth: oauth2\n    oauth2:\n      provider: microsoft\n      tenant: t\n      client_id: c\n      certificate_file: /c\n", `oauth2.private_key_file: is required with certificate_file`},
		{"google with a microsoft field", mailboxHead + "    auth: oauth2\n    oauth2:\n      provider: google\n      tenant: contoso\n", `:9: mailbox "support": oauth2.tenant: is not used by provider google`},
		{"google key not a service account", mailboxHead + "    auth: oauth2\n    oauth2:\n      provider: google\n      service_account_file: {{dir}}/client.json\n", `:9: mailbox "support": oauth2.service_account_file: {{dir}}/client.json is not a service account JSON key`},
		{"plain http token url", mailboxHead + "    auth: oauth2\n    oauth2:\n      provider: refresh_token\n      token_url: http://login.example.com/token\n", `:9: mailbox "support": oauth2.token_url: "http://login.example.com/token": use https`},
		{"credentials in token url", mailboxHead + "    auth: oauth2\n    oauth2:\n      provider: refresh_token\n      token_url: https://client:hunter2@login.example.com/token\n", `:9: mailbox "support": oauth2.token_url: give the client's secret as client_secret_file`},
		{"refresh without token", mailboxHead + "    auth: oauth2\n    oauth2:\n      provider: refresh_token\n      token_url: https://login.example.com/token\n      client_id: c\n", `oauth2.refresh_token_file: give refresh_token_file`},
		{"bad mechanism", mailboxHead + "    auth: oauth2\n    oauth2:\n      provider: google\n      mechanism: plain\n", `:9: mailbox "support": oauth2.mechanism: "plain"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"m.yaml": tc.yaml, "client.json": `{"installed": {"client_id": "x"}}`})
			_, err := configs.LoadMailboxes(filepath.Join(dir, "m.yaml"), roster)
			want := strings.ReplaceAll(tc.want, "{{dir}}", dir)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
}

// TestSMTPAuthEnvironment: SMTP_AUTH=oauth2 needs the mailbox whose token
// it borrows, and no password.
func TestSMTPAuthEnvironment(t *testing.T) {
	base := map[string]string{"FORGETMENOT_SMTP_HOST": "smtp.office365.com", "FORGETMENOT_SMTP_FROM": "support@winkel.example",
		"FORGETMENOT_MAILBOXES_FILE": "configs/mailboxes.yaml", "FORGETMENOT_SMTP_AUTH": "oauth2", "FORGETMENOT_SMTP_OAUTH2_MAILBOX": "support",
		"FORGETMENOT_SMTP_PASSWORD": "", "FORGETMENOT_SMTP_PASSWORD_FILE": ""}
	cases := []struct{ key, value, want string }{
		{"", "", ""},
		{"FORGETMENOT_SMTP_AUTH", "cram-md5", `FORGETMENOT_SMTP_AUTH: use password or oauth2, not "cram-md5"`},
		{"FORGETMENOT_SMTP_OAUTH2_MAILBOX", "", "FORGETMENOT_SMTP_OAUTH2_MAILBOX: is required with SMTP_AUTH=oauth2"},
		{"FORGETMENOT_MAILBOXES_FILE", "", "FORGETMENOT_MAILBOXES_FILE: is required with SMTP_AUTH=oauth2"},
		{"FORGETMENOT_SMTP_PASSWORD", "pw", "FORGETMENOT_SMTP_PASSWORD: is not used with SMTP_AUTH=oauth2"},
	}
	for _, tc := range cases {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			for k, v := range base {
				t.Setenv(k, v)
			}
			if tc.key != "" {
				t.Setenv(tc.key, tc.value)
			}
			cfg, err := configs.FromEnv()
			if tc.want == "" {
				if err != nil || cfg.SMTPAuth != "oauth2" || cfg.SMTPOAuth2Mailbox != "support" {
					t.Fatalf("FromEnv = %+v, %v", cfg.SMTPAuth, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestShippedOAuth2ExamplesLoad: the commented Microsoft 365 and Google
// examples in mailboxes.yaml load once uncommented (with their secret
// files present), so the documentation cannot drift from the loader.
func TestShippedOAuth2ExamplesLoad(t *testing.T) {
	roster, err := configs.LoadRoster("owners.yaml")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("mailboxes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, map[string]string{
		"m365-client-secret":          "secret",
		"google-service-account.json": `{"type": "service_account", "client_email": "r@p.iam.gserviceaccount.com", "private_key": "k"}`,
	})
	for _, name := range []string{"m365", "gmail"} {
		var block []string
		in := false
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(line, "  # - name: "+name) {
				in = true
			}
			if in && !strings.HasPrefix(line, "  #") {
				break
			}
			if in {
				block = append(block, "  "+strings.TrimPrefix(line, "  # "))
			}
		}
		if len(block) == 0 {
			t.Fatalf("no commented example %q in mailboxes.yaml", name)
		}
		yaml := "mailboxes:\n" + strings.ReplaceAll(strings.Join(block, "\n"), "/run/secrets", dir) + "\n"
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		boxes, err := configs.LoadMailboxes(path, roster)
		if err != nil {
			t.Fatalf("example %s:\n%s\n%v", name, yaml, err)
		}
		if boxes[0].OAuth2 == nil {
			t.Errorf("example %s has no oauth2 settings", name)
		}
	}
}
