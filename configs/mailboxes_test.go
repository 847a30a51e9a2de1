package configs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
)

func TestShippedMailboxesLoad(t *testing.T) {
	roster, err := configs.LoadRoster("owners.yaml")
	if err != nil {
		t.Fatal(err)
	}
	boxes, err := configs.LoadMailboxes("mailboxes.yaml", roster)
	if err != nil {
		t.Fatalf("the shipped mailboxes.yaml must load: %v", err)
	}
	if len(boxes) != 1 || boxes[0].Folder != "INBOX" || boxes[0].PollInterval != time.Minute || boxes[0].Password == "" || boxes[0].DefaultTeam != "support-nl" {
		t.Errorf("mailboxes = %+v", boxes)
	}
}

func TestBadMailboxesNameFileAndLine(t *testing.T) {
	roster, err := configs.LoadRoster("owners.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ file, want string }{
		{"bad/mailbox_unknown_team.yaml", `bad/mailbox_unknown_team.yaml:7: mailbox "billing": default_team "facturen" is not a team in the owners file`},
		{"bad/mailbox_typo_field.yaml", `bad/mailbox_typo_field.yaml:5: unknown field "pasword" (known here:`},
		{"bad/mailbox_no_password.yaml", `bad/mailbox_no_password.yaml:2: mailbox "support": give one of password, password_file or password_env`},
		{"bad/mailbox_bad_tls.yaml", `bad/mailbox_bad_tls.yaml:2: mailbox "support": tls "ssl"`},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			_, err := configs.LoadMailboxes("testdata/"+tc.file, roster)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}
