// Package messages holds the text kforge shows people in status, explain
// and doctor, in message catalogues per language (locales/*.yaml), read
// with go-i18n. English is complete and the fallback; a catalogue may
// leave any message out. Adding a language is adding a file.
package messages

import (
	"embed"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
	"golang.org/x/text/width"
	"gopkg.in/yaml.v3"
)

//go:embed locales/*.yaml
var locales embed.FS

var (
	loadOnce sync.Once
	bundle   *i18n.Bundle
	langs    []string
	loadErr  error
)

func load() {
	bundle = i18n.NewBundle(language.English)
	bundle.RegisterUnmarshalFunc("yaml", yaml.Unmarshal)
	entries, err := locales.ReadDir("locales")
	if err != nil {
		loadErr = err
		return
	}
	for _, e := range entries {
		if _, err := bundle.LoadMessageFileFS(locales, "locales/"+e.Name()); err != nil {
			loadErr = fmt.Errorf("message catalogue %s: %w", e.Name(), err)
			return
		}
		langs = append(langs, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(langs)
}

// Languages are the catalogues kforge has, e.g. [en zh].
func Languages() []string {
	loadOnce.Do(load)
	return langs
}

// Printer renders messages in one language.
type Printer struct {
	loc  *i18n.Localizer
	Lang string
}

// New returns a Printer for lang ("zh", "zh_CN.UTF-8", "en"); "" takes
// the language from LC_ALL, LC_MESSAGES or LANG, as gettext does. A
// language without a catalogue prints English.
func New(lang string) (*Printer, error) {
	loadOnce.Do(load)
	if loadErr != nil {
		return nil, loadErr
	}
	if lang == "" {
		lang = FromEnvironment()
	}
	tag := posixToTag(lang)
	if tag == "" {
		tag = "en"
	}
	if _, err := language.Parse(tag); err != nil {
		return nil, fmt.Errorf("--lang %q: not a language; kforge has %s", lang, strings.Join(langs, ", "))
	}
	base := strings.SplitN(tag, "-", 2)[0]
	return &Printer{loc: i18n.NewLocalizer(bundle, tag, "en"), Lang: base}, nil
}

// English is the Printer of the fallback language.
func English() *Printer {
	p, err := New("en")
	if err != nil {
		panic(err) // the embedded catalogues are tested
	}
	return p
}

// FromEnvironment is the locale the environment names, gettext's order.
func FromEnvironment() string {
	for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if s := os.Getenv(v); s != "" {
			return s
		}
	}
	return ""
}

// posixToTag turns a POSIX locale (zh_CN.UTF-8@x) into a BCP 47 tag
// (zh-CN); C and POSIX are English.
func posixToTag(l string) string {
	l, _, _ = strings.Cut(l, ".")
	l, _, _ = strings.Cut(l, "@")
	if l == "C" || l == "POSIX" {
		return "en"
	}
	return strings.ReplaceAll(l, "_", "-")
}

// T renders message id with data, a map or struct its template reads.
// An id no catalogue has renders as itself, so a missing message shows
// and the tests that check every id fail.
func (p *Printer) T(id string, data any) string {
	s, err := p.loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
	if err != nil {
		return id
	}
	return s
}

// Has tells whether the fallback catalogue has id.
func Has(id string) bool {
	loadOnce.Do(load)
	_, err := i18n.NewLocalizer(bundle, "en").Localize(&i18n.LocalizeConfig{MessageID: id})
	return err == nil
}

// Table writes rows as columns padded to the widest cell by display
// width, East Asian wide characters counting two, which text/tabwriter
// does not know: a Chinese header lines up with its ASCII cells. Cells
// are separated by gap spaces; each line starts with indent.
func Table(w io.Writer, indent string, gap int, rows [][]string) {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], Width(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		b.WriteString(indent)
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-Width(c)+gap))
			}
		}
		fmt.Fprintln(w, b.String())
	}
}

// Width is s's width on a terminal: two columns for each East Asian wide
// or fullwidth character, one for the others.
func Width(s string) int {
	n := 0
	for _, r := range s {
		switch width.LookupRune(r).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}
