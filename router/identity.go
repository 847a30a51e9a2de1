package router

import (
	"slices"
	"strings"
)

// Identity keys name who a customer is, in a form comparable across
// channels: "email:<address>" (the same person on every channel) or
// "<channel>:<id>" (a chat session, a forum user, a shop's customer number:
// comparable only within its channel).

// EmailIdentity is the identity key of an e-mail address ("" for none).
func EmailIdentity(address string) string {
	if e := strings.ToLower(strings.TrimSpace(address)); e != "" {
		return "email:" + e
	}
	return ""
}

// identities lists the identity keys the customer record carries when it
// came by channel ch. E-mail carries no ids of its own, so an id there could
// only be confused with an address.
func (c Customer) identities(ch Channel) []string {
	out := make([]string, 0, 2)
	if e := EmailIdentity(c.Email); e != "" {
		out = append(out, e)
	}
	if c.ID != "" && ch != ChannelEmail && ch != "" {
		out = append(out, string(ch)+":"+c.ID)
	}
	return out
}

// Proves reports whether identity (EmailIdentity of an address, say) is
// proven to belong to the complaint's customer: the identity the complaint
// was opened with, one the customer record gained from a proven message, or
// one recorded in Identities (an address we wrote to for it, the opening
// message's Reply-To, an identity staff merged in).
func (c Complaint) Proves(identity string) bool {
	if identity == "" {
		return false
	}
	if identity == c.CustomerKey || slices.Contains(c.Identities, identity) {
		return true
	}
	return slices.Contains(c.Customer.identities(c.Channel), identity)
}

// provenSender is the one rule for "this message is from the complaint's
// customer", used by every path by which a message may join an existing
// complaint (its complaint id, a subject token or plus address, a thread
// key such as an e-mail's In-Reply-To, a chat session, a forum topic): one
// of the identities the message's channel vouches for must be one the
// complaint holds. A reference alone proves nothing (complaint ids are
// sequential, Message-IDs travel in quotes), and a message without a
// usable identity (an anonymous form, a mail without a readable From) never
// joins a complaint.
func provenSender(c Complaint, msg Message) bool {
	for _, id := range msg.Customer.identities(msg.Channel) {
		if c.Proves(id) {
			return true
		}
	}
	return false
}

// addIdentity records a further proven identity of the complaint's
// customer, once.
func (c *Complaint) addIdentity(identity string) bool {
	if identity == "" || c.Proves(identity) {
		return false
	}
	c.Identities = append(slices.Clone(c.Identities), identity)
	return true
}

// allIdentities is every identity the complaint holds.
func (c Complaint) allIdentities() []string {
	out := slices.Clone(c.Identities)
	for _, id := range append([]string{c.CustomerKey}, c.Customer.identities(c.Channel)...) {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// completeCustomer fills what the complaint did not know yet about its
// customer from a message proven to be theirs; it never overwrites. A
// channel's customer id is only taken from the complaint's own channel: ids
// of different channels name different things.
func completeCustomer(known Customer, knownChannel Channel, seen Customer, seenChannel Channel) Customer {
	if known.Name == "" {
		known.Name = seen.Name
	}
	if known.Email == "" {
		known.Email = seen.Email
	}
	if known.ID == "" && knownChannel == seenChannel {
		known.ID = seen.ID
	}
	return known
}
