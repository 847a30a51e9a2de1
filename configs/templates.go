package configs

import (
	"embed"
	"io/fs"
)

//go:embed forum-templates/*.tmpl
var forumTemplates embed.FS

// ForumTemplates are the shipped texts of the forum channel (acknowledgement,
// reply, promise and satisfaction question in nl, en, de and fr). They are
// compiled in, so the daemon words forum posts wherever it runs;
// FORGETMENOT_DISCOURSE_TEMPLATES names a directory whose files replace them
// one by one.
func ForumTemplates() fs.FS {
	sub, err := fs.Sub(forumTemplates, "forum-templates")
	if err != nil {
		panic(err) // the directory is embedded above: cannot happen
	}
	return sub
}
