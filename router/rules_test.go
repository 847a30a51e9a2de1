package router

import (
	"regexp"
	"strings"
	"testing"
)

func TestRuleMatching(t *testing.T) {
	rules := &Rules{DefaultTeam: "general", Rules: []Rule{
		{Name: "billing", Team: "billing", Keywords: []string{"refund", "factuur", "credit card"}},
		{Name: "orders-nl", Team: "nl", SubjectPattern: regexp.MustCompile(`(?i)\bbestelling\s*#?\d+`), Languages: []string{"nl"}},
		{Name: "forum-bugs", Team: "dev", Channels: []Channel{ChannelForum}, Pattern: regexp.MustCompile(`(?i)\b(crash|bug)\b`)},
		{Name: "belgium", Team: "be", EmailDomains: []string{"be"}},
		{Name: "vip", Team: "vip", EmailDomains: []string{"bigcustomer.com"}, BodyPattern: regexp.MustCompile(`(?i)urgent`)},
	}}
	tests := []struct {
		name     string
		msg      Message
		lang     string
		team     string
		mentions string
	}{
		{"keyword at word start", Message{Body: "I was never Refunded"}, "en", "billing", `keyword "refund"`},
		{"keyword inside a word does not match", Message{Body: "the prefunding round"}, "en", "general", "no rule matched"},
		{"dutch compound matches", Message{Subject: "Factuurnummer klopt niet"}, "nl", "billing", `keyword "factuur"`},
		{"multi-word keyword", Message{Body: "my Credit Card was charged twice"}, "en", "billing", `keyword "credit card"`},
		{"all conditions must hold", Message{Subject: "Bestelling #123 kapot"}, "en", "general", "no rule"},
		{"subject pattern and language", Message{Subject: "Bestelling #123 kapot"}, "nl", "nl", "language nl"},
		{"channel restricts", Message{Channel: ChannelEmail, Body: "app crash"}, "en", "general", "no rule"},
		{"channel and pattern", Message{Channel: ChannelForum, Body: "app crash on start"}, "en", "dev", "channel forum"},
		{"domain suffix", Message{Customer: Customer{Email: "jan@mail.telenet.be"}, Body: "x"}, "", "be", "domain be"},
		{"domain must be on a label boundary", Message{Customer: Customer{Email: "jan@maybe"}, Body: "x"}, "", "general", "no rule"},
		{"domain plus body pattern", Message{Customer: Customer{Email: "ceo@BigCustomer.com"}, Body: "URGENT please"}, "", "vip", "body pattern"},
		{"first match wins", Message{Customer: Customer{Email: "x@y.be"}, Body: "refund"}, "", "billing", "billing"},
		{"source default team", Message{Body: "hello", DefaultTeam: "mailbox-team"}, "", "mailbox-team", "source's default team"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := rules.match(tc.msg, tc.lang)
			if m.team != tc.team || !strings.Contains(m.reason, tc.mentions) {
				t.Fatalf("match = %+v, want team %s with reason mentioning %q", m, tc.team, tc.mentions)
			}
		})
	}
}

func TestDetectLanguage(t *testing.T) {
	tests := []struct{ text, want string }{
		{"Mijn pakket is niet aangekomen en ik wil graag mijn geld terug.", "nl"},
		{"Goedemiddag, de factuur klopt niet. Kunt u dat nakijken?", "nl"},
		{"My parcel has not arrived and I would like a refund please.", "en"},
		{"Ich habe meine Bestellung nicht erhalten, bitte helfen Sie mir.", "de"},
		{"Je n'ai pas reçu ma commande, merci de me répondre.", "fr"},
		{"OK", ""},
		{"Order 104-2233", ""},
		{"", ""},
	}
	for _, tc := range tests {
		if got := DetectLanguage(tc.text); got != tc.want {
			t.Errorf("DetectLanguage(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestCustomerIdentity(t *testing.T) {
	tests := []struct {
		a, b        Customer
		sameChannel bool
		conflict    bool
	}{
		{Customer{Email: "Jan@Example.nl"}, Customer{Email: "jan@example.nl"}, true, false},
		{Customer{Email: "jan@example.nl"}, Customer{Email: "piet@example.nl"}, true, true},
		{Customer{ID: "1"}, Customer{ID: "2"}, true, true},
		{Customer{ID: "1"}, Customer{ID: "2"}, false, false},
		{Customer{Email: "jan@example.nl", ID: "1"}, Customer{Email: "jan@example.nl", ID: "2"}, true, false},
		{Customer{}, Customer{Email: "x@example.nl"}, true, false},
	}
	for _, tc := range tests {
		if got := tc.a.conflictsWith(tc.b, tc.sameChannel); got != tc.conflict {
			t.Errorf("%+v vs %+v (same channel %v): conflict = %v, want %v", tc.a, tc.b, tc.sameChannel, got, tc.conflict)
		}
	}
	if k := (Customer{Email: " Jan@Example.NL "}).Key(ChannelChat); k != "email:jan@example.nl" {
		t.Errorf("key = %q", k)
	}
	if k := (Customer{ID: "42"}).Key(ChannelWebhook); k != "webhook:42" {
		t.Errorf("key = %q", k)
	}
}
