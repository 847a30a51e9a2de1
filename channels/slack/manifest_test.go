package slack_test

import (
	"os"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// What must hold: the shipped manifest asks for exactly the scopes and
// features the channel uses — no more (admins refuse greedy apps), no less
// (a missing scope fails at the first complaint).
func TestShippedManifest(t *testing.T) {
	raw, err := os.ReadFile("../../configs/slack-app-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Features struct {
			AppHome struct {
				HomeTab             bool `yaml:"home_tab_enabled"`
				MessagesTab         bool `yaml:"messages_tab_enabled"`
				MessagesTabReadOnly bool `yaml:"messages_tab_read_only_enabled"`
			} `yaml:"app_home"`
			SlashCommands []struct {
				Command string `yaml:"command"`
			} `yaml:"slash_commands"`
		} `yaml:"features"`
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
		Settings struct {
			Events struct {
				BotEvents []string `yaml:"bot_events"`
			} `yaml:"event_subscriptions"`
			Interactivity struct {
				Enabled bool `yaml:"is_enabled"`
			} `yaml:"interactivity"`
			SocketMode bool `yaml:"socket_mode_enabled"`
		} `yaml:"settings"`
	}
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"chat:write", "commands", "im:history", "im:write", "reactions:write", "users:read", "users:read.email"}
	got := slices.Sorted(slices.Values(m.OAuth.Scopes.Bot))
	if !slices.Equal(got, want) {
		t.Errorf("bot scopes %v, want exactly %v", got, want)
	}
	if len(m.Features.SlashCommands) != 1 || m.Features.SlashCommands[0].Command != "/complaints" {
		t.Errorf("slash commands %+v, want /complaints", m.Features.SlashCommands)
	}
	if !slices.Equal(slices.Sorted(slices.Values(m.Settings.Events.BotEvents)), []string{"app_home_opened", "message.im"}) {
		t.Errorf("bot events %v, want app_home_opened (the worklist) and message.im (notes typed in threads)", m.Settings.Events.BotEvents)
	}
	if !m.Features.AppHome.HomeTab {
		t.Error("the Home tab must be on: it shows the owner's worklist")
	}
	if !m.Settings.Interactivity.Enabled || !m.Settings.SocketMode {
		t.Error("interactivity and socket mode must be on")
	}
	if !m.Features.AppHome.MessagesTab || m.Features.AppHome.MessagesTabReadOnly {
		t.Error("the messages tab must be writable, or staff cannot type notes in threads")
	}
}
