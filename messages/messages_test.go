package messages

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func catalogue(t *testing.T, lang string) map[string]string {
	t.Helper()
	data, err := locales.ReadFile("locales/" + lang + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s.yaml: %v", lang, err)
	}
	return m
}

var fieldRe = regexp.MustCompile(`{{\s*\.(\w+)\s*}}`)

func fields(s string) []string {
	var out []string
	for _, m := range fieldRe.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Every catalogue's message is one English has, with the same template
// fields: a translation can neither invent a message nor lose a fact.
func TestCataloguesMatchEnglish(t *testing.T) {
	en := catalogue(t, "en")
	if len(Languages()) < 2 || !slices.Contains(Languages(), "zh") {
		t.Fatalf("languages %v", Languages())
	}
	for _, lang := range Languages() {
		for id, text := range catalogue(t, lang) {
			want, ok := en[id]
			if !ok {
				t.Errorf("%s.yaml: %s is not in en.yaml", lang, id)
				continue
			}
			if !slices.Equal(fields(text), fields(want)) {
				t.Errorf("%s.yaml: %s uses %v, en.yaml %v", lang, id, fields(text), fields(want))
			}
		}
	}
	// Chinese is complete today; a new language need not be.
	if zh := catalogue(t, "zh"); len(zh) != len(en) {
		for id := range en {
			if _, ok := zh[id]; !ok {
				t.Errorf("zh.yaml lacks %s", id)
			}
		}
	}
}

func TestLanguageChoice(t *testing.T) {
	for _, tc := range []struct{ lang, env, want string }{
		{"zh", "", "zh"},
		{"", "zh_CN.UTF-8", "zh"},
		{"", "C.UTF-8", "en"},
		{"", "", "en"},
		{"en", "zh_CN.UTF-8", "en"},
		{"fr", "", "fr"},
	} {
		t.Setenv("LC_ALL", "")
		t.Setenv("LC_MESSAGES", "")
		t.Setenv("LANG", tc.env)
		p, err := New(tc.lang)
		if err != nil {
			t.Fatalf("New(%q): %v", tc.lang, err)
		}
		if p.Lang != tc.want {
			t.Errorf("lang %q env %q: %s, want %s", tc.lang, tc.env, p.Lang, tc.want)
		}
	}
	zh, _ := New("zh")
	if got := zh.T("status.problem.node", map[string]string{"Node": "n1"}); got != "节点 n1 未就绪" {
		t.Errorf("zh: %q", got)
	}
	fr, _ := New("fr")
	if got := fr.T("status.problem.node", map[string]string{"Node": "n1"}); got != "node n1 is not Ready" {
		t.Errorf("a language without a catalogue: %q, want English", got)
	}
	if got := zh.T("no.such.message", nil); got != "no.such.message" {
		t.Errorf("missing id: %q", got)
	}
	if _, err := New("!!"); err == nil || !strings.Contains(err.Error(), "en, zh") {
		t.Errorf("bad language: %v", err)
	}
	if !Has("explain.heading") || Has("no.such.message") {
		t.Error("Has")
	}
}

// Columns line up on a terminal whatever the script: Chinese characters
// take two columns.
func TestTable(t *testing.T) {
	var b strings.Builder
	Table(&b, "  ", 2, [][]string{{"节点", "角色", "就绪"}, {"vm", "control-plane", "true"}})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	want := []string{"  节点  角色           就绪", "  vm    control-plane  true"}
	if !slices.Equal(lines, want) {
		t.Fatalf("table:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if Width("健康:") != 5 || Width("health:") != 7 {
		t.Errorf("widths %d %d", Width("健康:"), Width("health:"))
	}
}
