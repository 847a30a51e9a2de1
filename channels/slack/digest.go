package slack

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/forgetmenot/forgetmenot/router"
	slackgo "github.com/slack-go/slack"
)

// The weekly digest: a short summary of last week for the leads, posted in
// the lead channel through the channel's paced sender, once per channel
// (a redelivered notification finds its post recorded and stops).

// Slack's limits (CONTRACTS.md) that the digest keeps to by itself.
const (
	maxHeader      = 150
	maxSectionText = 3000
	maxField       = 2000
	maxFallback    = 4000
	maxButtonURL   = 3000
	digestAction   = "fmn_digest_report"
)

// digestChannels are the channels that get the digest: the lead channel.
func (s *Slack) digestChannels() []string {
	if s.cfg.LeadChannel == "" {
		return nil
	}
	return []string{s.cfg.LeadChannel}
}

// postDigest posts the digest in every lead channel that has not had it.
func (s *Slack) postDigest(ctx context.Context, n router.Notification) error {
	if n.Digest == nil {
		return router.Permanent(errors.New("slack: a digest notification without its digest"))
	}
	chans := s.digestChannels()
	if len(chans) == 0 {
		s.log.Warn("weekly digest not posted: no lead channel is configured", "week", n.Digest.Week)
		return nil
	}
	blocks, text := digestBlocks(*n.Digest, s.people.name)
	for _, ch := range chans {
		what := "digest to " + ch
		key := postedKey(n.ID + ":" + ch)
		if _, done, err := s.cfg.State.Get(ctx, key); err != nil || done {
			if err != nil {
				return err
			}
			continue
		}
		if err := s.pace.wait(ctx, ch); err != nil {
			return err
		}
		ts, err := s.postMessage(ctx, ch, "", Message{Text: text, Blocks: blocks})
		if err != nil {
			return s.classify(what, err)
		}
		s.health.ok(what)
		if err := s.cfg.State.Set(ctx, key, ts, postedTTL); err != nil {
			return fmt.Errorf("slack: recording that the digest %s was posted in %s: %w", n.Digest.Week, ch, err)
		}
		s.log.Info("weekly digest posted", "week", n.Digest.Week, "channel", ch)
	}
	return nil
}

// escaped is staff or customer text escaped for mrkdwn within n characters.
func escaped(s string, n int) string {
	out, _ := clip(s, n)
	return out
}

func hours(secs float64) string { return strconv.FormatFloat(secs/3600, 'f', 1, 64) }

// digestBlocks renders the digest: headline figures as fields, the top
// causes, who is over capacity, and the link to the full report.
func digestBlocks(d router.Digest, names func(string) string) ([]slackgo.Block, string) {
	unit := "business hours"
	if !d.BusinessTime {
		unit = "hours"
	}
	volume := strconv.Itoa(d.Complaints) + " complaints"
	if d.Volume > 0 {
		volume += fmt.Sprintf(" on %d orders: %.2f%%", d.Volume, d.RatePercent)
		if d.ThresholdPercent > 0 {
			volume += fmt.Sprintf(" (threshold %s%%)", strconv.FormatFloat(d.ThresholdPercent, 'f', -1, 64))
			if d.Alert {
				volume += " :warning: *over the threshold*"
			}
		}
	} else if d.ThresholdPercent > 0 {
		volume += " (no volume recorded for the week, so no rate)"
	}
	med := func(x router.Durations, what string) string {
		if x.Count == 0 {
			return "none " + what
		}
		return fmt.Sprintf("%s %s (%d %s)", hours(x.MedianSeconds), unit, x.Count, what)
	}
	kept := "none settled"
	if settled := d.Promises.Kept + d.Promises.Broken; settled > 0 {
		kept = fmt.Sprintf("%s%% (%d of %d)", strconv.FormatFloat(d.Promises.KeptPercent, 'f', 1, 64), d.Promises.Kept, settled)
	}
	fields := []*slackgo.TextBlockObject{
		mrkdwn(clipRaw("*Volume*\n"+volume, maxField)),
		mrkdwn("*Deadlines missed*\n" + strconv.Itoa(d.Breaches)),
		mrkdwn("*First response, median*\n" + med(d.FirstResponse, "answered")),
		mrkdwn("*Resolution, median*\n" + med(d.Resolution, "closed")),
		mrkdwn("*Promises kept*\n" + kept),
	}
	causes := "*Top causes*\nNo closed complaints with a cause."
	if len(d.TopCauses) > 0 {
		var lines []string
		for i, c := range d.TopCauses[:min(len(d.TopCauses), router.DigestTopCauses)] {
			lines = append(lines, fmt.Sprintf("%d. %s: %d", i+1, escaped(c.Name, 200), c.Count))
		}
		causes = "*Top causes*\n" + strings.Join(lines, "\n")
	}
	over := "*Over capacity now*\nNobody."
	if len(d.OverCapacity) > 0 {
		var lines []string
		for i, o := range d.OverCapacity {
			if i == 20 {
				lines = append(lines, fmt.Sprintf("…and %d more (see the report)", len(d.OverCapacity)-i))
				break
			}
			lines = append(lines, fmt.Sprintf("• %s: %d open, capacity %d", escaped(names(o.Owner), 100), o.Open, o.Capacity))
		}
		over = "*Over capacity now*\n" + strings.Join(lines, "\n")
	}
	title := clipPlain("Weekly complaints digest · "+d.Week, maxHeader)
	blocks := []slackgo.Block{
		slackgo.NewHeaderBlock(plain(title)),
		slackgo.NewContextBlock("", mrkdwn(fmt.Sprintf("Complaints opened %s to %s; durations in %s.",
			d.Since.Format("Mon 2 Jan"), d.Until.AddDate(0, 0, -1).Format("Mon 2 Jan 2006"), unit))),
		slackgo.NewSectionBlock(nil, fields, nil),
		slackgo.NewSectionBlock(mrkdwn(clipRaw(causes, maxSectionText)), nil, nil),
		slackgo.NewSectionBlock(mrkdwn(clipRaw(over, maxSectionText)), nil, nil),
	}
	if d.ReportURL != "" && len(d.ReportURL) <= maxButtonURL {
		btn := slackgo.NewButtonBlockElement(digestAction, d.Week, plain("Open the report (charts)"))
		btn.URL = d.ReportURL
		blocks = append(blocks, slackgo.NewActionBlock("digest_actions", btn))
	} else {
		blocks = append(blocks, slackgo.NewContextBlock("", mrkdwn(fmt.Sprintf("The full report with charts: `forgetmenot report --format html --since %s --until %s > report.html`",
			d.Since.Format("2006-01-02"), d.Until.Format("2006-01-02")))))
	}
	text := fmt.Sprintf("Weekly complaints digest %s: %s; promises kept %s; %d deadlines missed", d.Week, volume, kept, d.Breaches)
	return blocks, clipRaw(text, maxFallback)
}
