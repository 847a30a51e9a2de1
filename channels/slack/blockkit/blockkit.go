// Package blockkit encodes Slack's documented Block Kit and Web API payload
// limits (see CONTRACTS.md) in one place. forgetmenot's Slack channel checks
// every payload with it before sending, and the test double
// (internal/testslack) refuses with it what Slack refuses, with Slack's error
// codes, so a payload Slack would reject fails the tests instead of a
// notification in production.
//
// It works on the JSON Slack receives, so it judges exactly what is sent,
// whichever library built it.
package blockkit

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Slack's documented limits.
const (
	MaxMessageBlocks   = 50
	MaxViewBlocks      = 100
	MaxMessageText     = 4000 // Slack truncates at 40,000; notifications should stay far below
	MaxHeaderText      = 150
	MaxSectionText     = 3000
	MaxSectionFields   = 10
	MaxFieldText       = 2000
	MaxContextElements = 10
	MaxActionsElements = 25
	MaxButtonText      = 75
	MaxButtonValue     = 2000
	MaxActionID        = 255
	MaxBlockID         = 255
	MaxURL             = 3000
	MaxInputLabel      = 2000
	MaxInputHint       = 2000
	MaxInputLength     = 3000
	MaxOptionText      = 75
	MaxOptionValue     = 150
	MaxOptions         = 100
	MaxCheckboxOptions = 10
	MaxPlaceholder     = 150
	MaxViewTitle       = 24
	MaxPrivateMetadata = 3000
	MaxCallbackID      = 255
	MaxTextObject      = 3000
)

// Error is Slack's refusal: its error code (invalid_blocks for messages,
// invalid_arguments for views, no_text, msg_too_long) and the messages Slack
// puts in response_metadata, each naming the JSON path of the problem.
type Error struct {
	Code     string
	Messages []string
}

func (e *Error) Error() string {
	return e.Code + ": " + strings.Join(e.Messages, "; ")
}

// Len counts a string as Slack's limits do, erring on the safe side: in
// characters as sent, a character outside the Basic Multilingual Plane (most
// emoji) counting as the two UTF-16 units Slack's clients count it as. mrkdwn
// text is escaped by its writer (& → &amp;), so its escapes count as sent.
func Len(s string) int {
	n := 0
	for _, r := range s {
		n += RuneLen(r)
	}
	return n
}

// RuneLen is what one character counts for in Len.
func RuneLen(r rune) int {
	if r > 0xFFFF {
		return 2
	}
	return 1
}

// PlainLen counts a plain_text string: Slack escapes &, < and > in it before
// applying the limit, so "&" counts as the five characters of "&amp;".
func PlainLen(s string) int {
	return Len(s) + 4*strings.Count(s, "&") + 3*strings.Count(s, "<") + 3*strings.Count(s, ">")
}

type checker struct {
	problems []string
}

func (c *checker) fail(path, format string, a ...any) {
	c.problems = append(c.problems, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", fmt.Sprintf(format, a...), path))
}

func (c *checker) max(path string, s string, n int) {
	c.maxLen(path, Len(s), n)
}

func (c *checker) maxLen(path string, l, n int) {
	if l > n {
		c.fail(path, "must be less than %d characters (is %d)", n+1, l)
	}
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// text checks a text object: a known type, not empty, at most n characters.
func (c *checker) text(path string, v any, n int, plainOnly bool) {
	t := obj(v)
	if t == nil {
		c.fail(path, "must be a text object")
		return
	}
	switch str(t, "type") {
	case "plain_text":
	case "mrkdwn":
		if plainOnly {
			c.fail(path+"/type", "must be plain_text")
		}
	default:
		c.fail(path+"/type", "must be plain_text or mrkdwn")
	}
	s := str(t, "text")
	if strings.TrimSpace(s) == "" {
		c.fail(path+"/text", "must be more than 0 characters")
	}
	if str(t, "type") == "plain_text" {
		c.maxLen(path+"/text", PlainLen(s), n)
	} else {
		c.max(path+"/text", s, n)
	}
}

// CheckMessage checks a message (chat.postMessage, chat.update,
// chat.postEphemeral, a slash command's answer): its fallback text and its
// blocks, given as JSON (nil or "" for none).
func CheckMessage(text string, blocksJSON []byte) error {
	var blocks []any
	if len(blocksJSON) > 0 && string(blocksJSON) != "null" {
		if err := json.Unmarshal(blocksJSON, &blocks); err != nil {
			return &Error{Code: "invalid_blocks_format", Messages: []string{"blocks are not a JSON array: " + err.Error()}}
		}
	}
	if strings.TrimSpace(text) == "" {
		// Slack wants text with blocks too: notifications and screen
		// readers show only it.
		return &Error{Code: "no_text", Messages: []string{"[ERROR] a top-level text fallback is required [json-pointer:/text]"}}
	}
	if Len(text) > MaxMessageText {
		return &Error{Code: "msg_too_long", Messages: []string{fmt.Sprintf("[ERROR] text must be at most %d characters [json-pointer:/text]", MaxMessageText)}}
	}
	c := &checker{}
	if len(blocks) > MaxMessageBlocks {
		c.fail("/blocks", "no more than %d items allowed", MaxMessageBlocks)
	}
	c.blocks("/blocks", blocks)
	if len(c.problems) > 0 {
		return &Error{Code: "invalid_blocks", Messages: c.problems}
	}
	return nil
}

// CheckView checks a view (views.open, views.update, views.push,
// views.publish) given as JSON.
func CheckView(viewJSON []byte) error {
	var v map[string]any
	if err := json.Unmarshal(viewJSON, &v); err != nil || v == nil {
		return &Error{Code: "invalid_arguments", Messages: []string{"[ERROR] view is not a JSON object [json-pointer:/view]"}}
	}
	c := &checker{}
	kind := str(v, "type")
	switch kind {
	case "modal":
		c.text("/view/title", v["title"], MaxViewTitle, true)
		for _, k := range []string{"submit", "close"} {
			if v[k] != nil {
				c.text("/view/"+k, v[k], MaxViewTitle, true)
			}
		}
	case "home":
		if v["title"] != nil {
			c.text("/view/title", v["title"], MaxViewTitle, true)
		}
	default:
		c.fail("/view/type", "must be modal or home")
	}
	c.max("/view/private_metadata", str(v, "private_metadata"), MaxPrivateMetadata)
	c.max("/view/callback_id", str(v, "callback_id"), MaxCallbackID)
	c.max("/view/external_id", str(v, "external_id"), MaxCallbackID)
	blocks := list(v["blocks"])
	if len(blocks) > MaxViewBlocks {
		c.fail("/view/blocks", "no more than %d items allowed", MaxViewBlocks)
	}
	c.blocks("/view/blocks", blocks)
	if len(c.problems) > 0 {
		return &Error{Code: "invalid_arguments", Messages: c.problems}
	}
	return nil
}

func (c *checker) blocks(path string, blocks []any) {
	ids := map[string]bool{}
	for i, raw := range blocks {
		b := obj(raw)
		p := fmt.Sprintf("%s/%d", path, i)
		if b == nil {
			c.fail(p, "must be an object")
			continue
		}
		c.max(p+"/block_id", str(b, "block_id"), MaxBlockID)
		if id := str(b, "block_id"); id != "" {
			if ids[id] {
				c.fail(p+"/block_id", "duplicate block_id %q", id)
			}
			ids[id] = true
		}
		switch str(b, "type") {
		case "header":
			c.text(p+"/text", b["text"], MaxHeaderText, true)
		case "section":
			if b["text"] == nil && b["fields"] == nil {
				c.fail(p, "must provide text or fields")
			}
			if b["text"] != nil {
				c.text(p+"/text", b["text"], MaxSectionText, false)
			}
			fields := list(b["fields"])
			if len(fields) > MaxSectionFields {
				c.fail(p+"/fields", "no more than %d items allowed", MaxSectionFields)
			}
			for j, f := range fields {
				c.text(fmt.Sprintf("%s/fields/%d", p, j), f, MaxFieldText, false)
			}
			if b["accessory"] != nil {
				c.element(p+"/accessory", obj(b["accessory"]))
			}
		case "context":
			els := list(b["elements"])
			if len(els) == 0 || len(els) > MaxContextElements {
				c.fail(p+"/elements", "must have 1 to %d items", MaxContextElements)
			}
			for j, e := range els {
				ep := fmt.Sprintf("%s/elements/%d", p, j)
				switch str(obj(e), "type") {
				case "image":
				case "plain_text", "mrkdwn":
					c.text(ep, e, MaxTextObject, false)
				default:
					c.fail(ep+"/type", "must be image, plain_text or mrkdwn")
				}
			}
		case "actions":
			els := list(b["elements"])
			if len(els) == 0 || len(els) > MaxActionsElements {
				c.fail(p+"/elements", "must have 1 to %d items", MaxActionsElements)
			}
			for j, e := range els {
				c.element(fmt.Sprintf("%s/elements/%d", p, j), obj(e))
			}
		case "input":
			c.text(p+"/label", b["label"], MaxInputLabel, true)
			if b["hint"] != nil {
				c.text(p+"/hint", b["hint"], MaxInputHint, true)
			}
			if b["element"] == nil {
				c.fail(p+"/element", "is required")
			} else {
				c.element(p+"/element", obj(b["element"]))
			}
		case "divider":
		case "image":
			c.max(p+"/image_url", str(b, "image_url"), MaxURL)
		default:
			c.fail(p+"/type", "unknown block type %q", str(b, "type"))
		}
	}
}

func (c *checker) element(p string, e map[string]any) {
	if e == nil {
		c.fail(p, "must be an element")
		return
	}
	c.max(p+"/action_id", str(e, "action_id"), MaxActionID)
	if e["placeholder"] != nil {
		c.text(p+"/placeholder", e["placeholder"], MaxPlaceholder, true)
	}
	switch str(e, "type") {
	case "button":
		c.text(p+"/text", e["text"], MaxButtonText, true)
		c.max(p+"/value", str(e, "value"), MaxButtonValue)
		c.max(p+"/url", str(e, "url"), MaxURL)
	case "plain_text_input":
		if v, ok := e["max_length"].(float64); ok && (v < 1 || v > MaxInputLength) {
			c.fail(p+"/max_length", "must be between 1 and %d", MaxInputLength)
		}
		if v, ok := e["min_length"].(float64); ok && (v < 0 || v > MaxInputLength) {
			c.fail(p+"/min_length", "must be between 0 and %d", MaxInputLength)
		}
		c.max(p+"/initial_value", str(e, "initial_value"), MaxInputLength)
	case "static_select", "multi_static_select", "radio_buttons", "overflow":
		opts := list(e["options"])
		if len(opts) == 0 || len(opts) > MaxOptions {
			c.fail(p+"/options", "must have 1 to %d items", MaxOptions)
		}
		c.options(p+"/options", opts)
	case "checkboxes":
		opts := list(e["options"])
		if len(opts) == 0 || len(opts) > MaxCheckboxOptions {
			c.fail(p+"/options", "must have 1 to %d items", MaxCheckboxOptions)
		}
		c.options(p+"/options", opts)
	case "datepicker", "datetimepicker", "timepicker", "users_select", "conversations_select", "channels_select":
	default:
		c.fail(p+"/type", "unknown element type %q", str(e, "type"))
	}
}

func (c *checker) options(p string, opts []any) {
	for i, raw := range opts {
		o := obj(raw)
		op := fmt.Sprintf("%s/%d", p, i)
		c.text(op+"/text", o["text"], MaxOptionText, false)
		c.max(op+"/value", str(o, "value"), MaxOptionValue)
		if o["description"] != nil {
			c.text(op+"/description", o["description"], MaxOptionText, true)
		}
	}
}
