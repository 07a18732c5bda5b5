package vault

import (
	"slices"
	"testing"
	"time"
)

// TestViewOf walks the rule that turns a key's metadata (latest version,
// version states, rotation marks) into what Fetch serves.
func TestViewOf(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	past := now.Add(-time.Hour).Format(time.RFC3339Nano)
	future := now.Add(time.Hour).Format(time.RFC3339Nano)
	live := versionState{}
	deleted := versionState{deletionTime: past}
	destroyed := versionState{destroyed: true}
	scheduled := versionState{deletionTime: future}

	type want struct {
		cur, pend int
		prev      []int
		pinned    bool
		missing   bool
	}
	for _, tc := range []struct {
		name     string
		latest   int
		versions map[int]versionState
		marks    map[string]string
		want     want
	}{
		{"nothing written", 0, nil, nil, want{missing: true}},
		{"plain", 3, map[int]versionState{1: live, 2: live, 3: live}, nil,
			want{cur: 3, prev: []int{2, 1}}},
		{"plain, latest deleted", 3, map[int]versionState{1: live, 2: live, 3: deleted}, nil,
			want{missing: true}},
		{"plain, latest destroyed", 2, map[int]versionState{1: live, 2: destroyed}, nil,
			want{missing: true}},
		{"plain, deletion only scheduled", 2, map[int]versionState{1: live, 2: scheduled}, nil,
			want{cur: 2, prev: []int{1}}},
		{"marks written, version not yet", 3, map[int]versionState{2: live, 3: live},
			map[string]string{MarkCurrent: "3", MarkPending: "4"},
			want{cur: 3, prev: []int{2}, pinned: true}},
		{"staged", 4, map[int]versionState{2: live, 3: live, 4: live},
			map[string]string{MarkCurrent: "3", MarkPending: "4"},
			want{cur: 3, pend: 4, prev: []int{2}, pinned: true}},
		{"promoted", 4, map[int]versionState{2: live, 3: live, 4: live},
			map[string]string{MarkCurrent: "4"},
			want{cur: 4, prev: []int{3, 2}, pinned: true}},
		{"discarded, mark kept", 4, map[int]versionState{3: live, 4: deleted},
			map[string]string{MarkCurrent: "3", MarkPending: "4"},
			want{cur: 3, pinned: true}},
		{"discarded", 4, map[int]versionState{3: live, 4: deleted},
			map[string]string{MarkCurrent: "3"},
			want{cur: 3, pinned: true}},
		{"staged after a discard", 5, map[int]versionState{3: live, 4: deleted, 5: live},
			map[string]string{MarkCurrent: "3", MarkPending: "5"},
			want{cur: 3, pend: 5, pinned: true}},
		{"a plain write after a discard voids the marks", 5, map[int]versionState{3: live, 4: deleted, 5: live},
			map[string]string{MarkCurrent: "3"},
			want{cur: 5, prev: []int{3}}},
		{"a plain write over a pending version voids the marks, and the staged one is never previous", 5,
			map[int]versionState{3: live, 4: live, 5: live},
			map[string]string{MarkCurrent: "3", MarkPending: "4"},
			want{cur: 5, prev: []int{3}}},
		{"a plain write after a promotion", 5, map[int]versionState{3: live, 4: live, 5: live},
			map[string]string{MarkCurrent: "4"},
			want{cur: 5, prev: []int{4, 3}}},
		{"the current version deleted by hand: none, the pending one is not current", 4, map[int]versionState{3: deleted, 4: live},
			map[string]string{MarkCurrent: "3", MarkPending: "4"},
			want{missing: true}},
		{"the current version pruned: none", 4, map[int]versionState{4: live},
			map[string]string{MarkCurrent: "3", MarkPending: "4"},
			want{missing: true}},
		{"promoted, then deleted by hand, as plain KV", 4, map[int]versionState{3: live, 4: deleted},
			map[string]string{MarkCurrent: "4"},
			want{missing: true}},
		{"malformed marks are no marks", 4, map[int]versionState{3: live, 4: live},
			map[string]string{MarkCurrent: "three", MarkPending: "-4"},
			want{cur: 4, prev: []int{3}}},
		{"a mark beyond the latest version is no mark", 4, map[int]versionState{3: live, 4: live},
			map[string]string{MarkCurrent: "9"},
			want{cur: 4, prev: []int{3}}},
		{"retired", 4, map[int]versionState{1: live, 2: live, 3: live, 4: live},
			map[string]string{MarkRetired: "3"},
			want{cur: 4}},
		{"retired, then written", 5, map[int]versionState{1: live, 2: live, 3: live, 4: live, 5: live},
			map[string]string{MarkRetired: "3"},
			want{cur: 5, prev: []int{4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			custom := tc.marks
			if custom == nil {
				custom = map[string]string{"owner": "team-a"}
			}
			m := kvMetadata{current: tc.latest, versions: tc.versions, custom: custom}
			v := m.viewOf(now)
			got := want{cur: v.current, pend: v.pending, prev: v.prev, pinned: v.pinned, missing: v.missing != ""}
			if tc.want.missing {
				if !got.missing {
					t.Fatalf("view %+v, want a missing current version", got)
				}
				return
			}
			if got.missing || got.cur != tc.want.cur || got.pend != tc.want.pend || got.pinned != tc.want.pinned ||
				!slices.Equal(got.prev, tc.want.prev) {
				t.Fatalf("view %+v (missing %q), want %+v", got, v.missing, tc.want)
			}
		})
	}
}

func TestParseMetadataCustom(t *testing.T) {
	m, ok := parseMetadata(map[string]any{
		"current_version": float64(4),
		"max_versions":    float64(5),
		"custom_metadata": map[string]any{MarkCurrent: "3", "n": float64(1)},
		"versions":        map[string]any{"3": map[string]any{}, "4": map[string]any{"deletion_time": ""}},
	})
	if !ok || m.current != 4 || m.maxVersions != 5 || m.custom[MarkCurrent] != "3" || len(m.custom) != 1 || len(m.versions) != 2 {
		t.Fatalf("parseMetadata = %+v, %v", m, ok)
	}
}
