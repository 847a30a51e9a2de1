package configs

import (
	"embed"
	"io/fs"
)

//go:embed chat-templates/*.tmpl
var chatTemplates embed.FS

// ShippedChatTemplates are the chat texts in configs/chat-templates, built
// in so the chat speaks nl, en, de and fr with nothing configured
// (CHAT_TEMPLATES points at an edited copy).
func ShippedChatTemplates() fs.FS {
	sub, err := fs.Sub(chatTemplates, "chat-templates")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	return sub
}
