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

func TestProvenSenderRule(t *testing.T) {
	chat := Complaint{Channel: ChannelChat, Customer: Customer{ID: "sess-1"}, CustomerKey: "chat:sess-1"}
	mail := Complaint{Channel: ChannelEmail, Customer: Customer{Email: "Jan@Example.nl"}, CustomerKey: "email:jan@example.nl",
		Identities: []string{"email:partner@example.nl"}}
	shop := Complaint{Channel: ChannelWebhook, Customer: Customer{ID: "88", Email: "jan@example.nl"}, CustomerKey: "email:jan@example.nl"}
	tests := []struct {
		name   string
		c      Complaint
		msg    Message
		proven bool
	}{
		{"same chat session", chat, Message{Channel: ChannelChat, Customer: Customer{ID: "sess-1"}}, true},
		{"other chat session", chat, Message{Channel: ChannelChat, Customer: Customer{ID: "sess-2"}}, false},
		{"stranger's e-mail on an anonymous chat complaint", chat, Message{Channel: ChannelWebhook, Customer: Customer{Email: "attacker@evil.example"}}, false},
		{"webhook id equal to the chat session id", chat, Message{Channel: ChannelWebhook, Customer: Customer{ID: "sess-1"}}, false},
		{"no identity at all", chat, Message{Channel: ChannelEmail}, false},
		{"same address, any case", mail, Message{Channel: ChannelEmail, Customer: Customer{Email: " JAN@example.NL"}}, true},
		{"same address from another channel", mail, Message{Channel: ChannelWebhook, Customer: Customer{Email: "jan@example.nl"}}, true},
		{"address we wrote to for it", mail, Message{Channel: ChannelEmail, Customer: Customer{Email: "partner@example.nl"}}, true},
		{"other address", mail, Message{Channel: ChannelEmail, Customer: Customer{Email: "piet@example.nl"}}, false},
		{"mail without a From", mail, Message{Channel: ChannelEmail, Customer: Customer{Name: "Jan"}}, false},
		{"e-mail channel never compares ids", mail, Message{Channel: ChannelEmail, Customer: Customer{ID: "jan@example.nl"}}, false},
		{"shop's customer id", shop, Message{Channel: ChannelWebhook, Customer: Customer{ID: "88"}}, true},
		{"shop's customer id from chat", shop, Message{Channel: ChannelChat, Customer: Customer{ID: "88"}}, false},
		{"other id, same address", shop, Message{Channel: ChannelWebhook, Customer: Customer{ID: "89", Email: "jan@example.nl"}}, true},
		{"name only", shop, Message{Channel: ChannelWebhook, Customer: Customer{Name: "Jan"}}, false},
	}
	for _, tc := range tests {
		if got := provenSender(tc.c, tc.msg); got != tc.proven {
			t.Errorf("%s: proven = %v, want %v", tc.name, got, tc.proven)
		}
	}
	if k := (Customer{Email: " Jan@Example.NL "}).Key(ChannelChat); k != "email:jan@example.nl" {
		t.Errorf("key = %q", k)
	}
	if k := (Customer{ID: "42"}).Key(ChannelWebhook); k != "webhook:42" {
		t.Errorf("key = %q", k)
	}
}
