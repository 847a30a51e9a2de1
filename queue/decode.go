package queue

import (
	"fmt"

	gojson "github.com/goccy/go-json"

	"github.com/forgetmenot/forgetmenot/router"
)

// What forgetmenot itself wrote with encoding/json (stream entries, stored
// complaints and timelines) is read back with go-json: every message is
// decoded on its way to the router and every notification on its way to
// staff, and go-json, made for this, decodes the same documents into the
// same values several times faster. TestDecodersAgreeWithEncodingJSON and
// its fuzz target hold it to encoding/json. Input from outside (webhooks,
// the API) is still read by encoding/json where it is checked.
func decodeJSON(data []byte, v any) error { return gojson.Unmarshal(data, v) }

// DecodeMessage reads an inbound stream entry's message.
func DecodeMessage(data []byte) (router.Message, error) {
	var m router.Message
	if err := decodeJSON(data, &m); err != nil {
		return router.Message{}, fmt.Errorf("decoding inbound message: %w", err)
	}
	return m, nil
}

// DecodeOutgoing reads an outbox entry: a notification for staff or a
// message for a customer.
func DecodeOutgoing(data []byte) (router.Outgoing, error) {
	var in outgoingRecord
	if err := decodeJSON(data, &in); err != nil {
		return router.Outgoing{}, fmt.Errorf("decoding outbox entry: %w", err)
	}
	var out router.Outgoing
	if n := in.Notification; n != nil {
		n.Notification.Complaint, n.Notification.Event = n.Complaint.c, n.Event.e
		out.Notification = &n.Notification
	}
	if m := in.Customer; m != nil {
		m.CustomerMessage.Complaint = m.Complaint.c
		out.Customer = &m.CustomerMessage
	}
	return out, nil
}

// outgoingRecord is an outbox entry as stored: router.Outgoing, whose
// complaints and events are as the commit stored them (records, see
// complaintRecord and eventRecord) or, written before records, the API's
// JSON. The outer fields take the place of the embedded ones.
type outgoingRecord struct {
	Notification *struct {
		router.Notification
		Complaint storedComplaintJSON `json:"complaint"`
		Event     storedEventJSON     `json:"event"`
	} `json:"notification,omitempty"`
	Customer *struct {
		router.CustomerMessage
		Complaint storedComplaintJSON `json:"complaint"`
	} `json:"customer,omitempty"`
}

// storedComplaintJSON decodes a complaint as decodeComplaint does.
type storedComplaintJSON struct{ c router.Complaint }

func (s *storedComplaintJSON) UnmarshalJSON(b []byte) error {
	c, err := decodeComplaint(string(b))
	s.c = c
	return err
}
