package smtest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The state of the fake service. Every field is guarded by Server.mu.

type secret struct {
	name        string
	arn         string
	seq         uint64 // creation order, to list secrets created in the same instant stably
	description *string
	kmsKeyID    *string
	tags        []tagShape

	created      time.Time
	lastChanged  time.Time
	lastAccessed time.Time // zero: never read; else midnight UTC of the day of the last read

	deleted      time.Time // zero: not scheduled for deletion; else when DeleteSecret was called
	deletionDate time.Time // when a scheduled deletion becomes permanent

	versions map[string]*version
	order    []string // version ids, oldest first

	rotation rotationState
}

type version struct {
	id           string
	str          *string
	bin          []byte
	stages       []string // sorted
	created      time.Time
	lastAccessed time.Time
}

func (v *version) has(stage string) bool {
	_, ok := slices.BinarySearch(v.stages, stage)
	return ok
}

func (v *version) add(stage string) {
	if i, ok := slices.BinarySearch(v.stages, stage); !ok {
		v.stages = slices.Insert(v.stages, i, stage)
	}
}

func (v *version) remove(stage string) {
	if i, ok := slices.BinarySearch(v.stages, stage); ok {
		v.stages = slices.Delete(v.stages, i, i+1)
	}
}

func (v *version) sameValue(str *string, bin []byte) bool {
	if (v.str == nil) != (str == nil) || (v.bin == nil) != (bin == nil) {
		return false
	}
	if str != nil && *v.str != *str {
		return false
	}
	return bytes.Equal(v.bin, bin)
}

// holder returns the version that carries stage, or nil.
func (s *secret) holder(stage string) *version {
	for _, id := range s.order {
		if v := s.versions[id]; v.has(stage) {
			return v
		}
	}
	return nil
}

// attach moves stage to v, taking it from the version that had it. Moving
// AWSCURRENT gives AWSPREVIOUS to the version that AWSCURRENT left, and takes
// AWSPREVIOUS from the version that had it before: the rule that
// PutSecretValue, UpdateSecret and UpdateSecretVersionStage share.
func (s *secret) attach(stage string, v *version) {
	old := s.holder(stage)
	if old == v {
		return
	}
	if old != nil {
		old.remove(stage)
	}
	v.add(stage)
	if stage == stageCurrent && old != nil {
		s.attach(stagePrevious, old)
	}
}

// versionsToStages is the VersionIdsToStages map: versions without a stage
// are deprecated and left out.
func (s *secret) versionsToStages() map[string][]string {
	m := make(map[string][]string)
	for _, id := range s.order {
		if v := s.versions[id]; len(v.stages) > 0 {
			m[id] = slices.Clone(v.stages)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// newVersion stores a new version with the given stages (AWSCURRENT when
// none). The first version of a secret gets AWSCURRENT whatever the stages,
// as PutSecretValue does.
func (s *secret) newVersion(id string, str *string, bin []byte, stages []string, now time.Time) *version {
	v := &version{id: id, created: now}
	if str != nil {
		c := *str
		v.str = &c
	}
	if bin != nil {
		v.bin = slices.Clone(bin)
	}
	first := s.holder(stageCurrent) == nil
	s.versions[id] = v
	s.order = append(s.order, id)
	if len(stages) == 0 {
		stages = []string{stageCurrent}
	}
	for _, st := range stages {
		s.attach(st, v)
	}
	if first {
		s.attach(stageCurrent, v)
	}
	s.lastChanged = now
	return v
}

func (s *secret) valueShape(v *version) secretValueShape {
	out := secretValueShape{
		ARN:           s.arn,
		Name:          s.name,
		VersionID:     v.id,
		VersionStages: slices.Clone(v.stages),
		CreatedDate:   epochPtr(v.created),
	}
	if v.str != nil {
		c := *v.str
		out.SecretString = &c
	}
	if v.bin != nil {
		out.SecretBinary = slices.Clone(v.bin)
	}
	if out.VersionStages == nil {
		out.VersionStages = []string{}
	}
	return out
}

func (s *secret) touch(v *version, now time.Time) {
	day := now.UTC().Truncate(24 * time.Hour)
	s.lastAccessed = day
	v.lastAccessed = day
}

// lookup finds the version GetSecretValue returns for the given
// version id and stage, or the error AWS answers.
func (s *secret) lookup(versionID, stage *string) (*version, *awsError) {
	if s.isDeleted() {
		return nil, errInvalidRequest(msgMarkedForDeleted)
	}
	switch {
	case versionID != nil:
		v := s.versions[*versionID]
		if v == nil || !v.hasValue() {
			return nil, errNotFound(fmt.Sprintf(
				"Secrets Manager can't find the specified secret value for VersionId: %s", *versionID))
		}
		if stage != nil && !v.has(*stage) {
			return nil, errNotFound(fmt.Sprintf(
				"Secrets Manager can't find the specified secret value for VersionId: %s and staging label: %s",
				*versionID, *stage))
		}
		return v, nil
	default:
		st := stageCurrent
		if stage != nil {
			st = *stage
		}
		v := s.holder(st)
		if v == nil || !v.hasValue() {
			return nil, errNotFound("Secrets Manager can't find the specified secret value for staging label: " + st)
		}
		return v, nil
	}
}

func (s *secret) isDeleted() bool { return !s.deleted.IsZero() }

// newARN makes the ARN of a new secret: the name and a hyphen and six random
// characters, so a secret created again under an old name gets a new ARN.
func (s *Server) newARN(name string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [6]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return s.arnPrefix() + name + "-" + string(b[:])
}

func (s *Server) arnPrefix() string {
	return "arn:aws:secretsmanager:" + s.region + ":" + s.accountID + ":secret:"
}

// resolve finds a secret by name, full ARN, or partial ARN (an ARN without
// the random suffix). It does not find secrets whose deletion has become
// permanent: sweep has removed them.
func (s *Server) resolve(id string) *secret {
	if strings.HasPrefix(id, "arn:") {
		for _, sec := range s.secrets {
			if sec.arn == id {
				return sec
			}
		}
		if name, ok := strings.CutPrefix(id, s.arnPrefix()); ok {
			return s.secrets[name]
		}
		return nil
	}
	return s.secrets[id]
}

// sweep makes scheduled deletions permanent once their recovery window has
// passed on the server's clock.
func (s *Server) sweep(now time.Time) {
	for name, sec := range s.secrets {
		if sec.isDeleted() && !now.Before(sec.deletionDate) {
			delete(s.secrets, name)
		}
	}
}

func (s *Server) createSecret(name string, now time.Time) *secret {
	s.seq++
	sec := &secret{
		name:        name,
		arn:         s.newARN(name),
		seq:         s.seq,
		created:     now,
		lastChanged: now,
		versions:    make(map[string]*version),
	}
	s.secrets[name] = sec
	return sec
}

// newUUID returns a random (version 4) UUID, the form of the version ids
// that the SDKs generate as ClientRequestToken.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Validation of the constraints of the model. AWS checks them on the server
// and answers ValidationException; the Go SDK v2 checks only required
// members on the client.

func checkRequired(field string, v *string) *awsError {
	if v == nil {
		return errValidation("Value null at '%s' failed to satisfy constraint: Member must not be null", field)
	}
	return nil
}

func checkLen(field string, v *string, minLen, maxLen int, sensitive bool) *awsError {
	if v == nil {
		return nil
	}
	return checkLength(field, *v, len(*v), minLen, maxLen, sensitive)
}

func checkLength(field, value string, n, minLen, maxLen int, sensitive bool) *awsError {
	quoted := " '" + value + "'"
	if sensitive {
		quoted = ""
	}
	switch {
	case n < minLen:
		return errValidation("Value%s at '%s' failed to satisfy constraint: Member must have length greater than or equal to %d", quoted, field, minLen)
	case n > maxLen:
		return errValidation("Value%s at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", quoted, field, maxLen)
	}
	return nil
}

func checkRange(field string, v *int32, minV, maxV int32) *awsError {
	if v == nil {
		return nil
	}
	switch {
	case *v < minV:
		return errValidation("Value '%d' at '%s' failed to satisfy constraint: Member must have value greater than or equal to %d", *v, field, minV)
	case *v > maxV:
		return errValidation("Value '%d' at '%s' failed to satisfy constraint: Member must have value less than or equal to %d", *v, field, maxV)
	}
	return nil
}

// checkValue checks SecretString and SecretBinary: 1 to 65536 bytes each, and
// not both (AWS: InvalidParameterException).
func checkValue(str *string, bin []byte, required bool) *awsError {
	if e := checkLen("secretString", str, 1, 65536, true); e != nil {
		return e
	}
	if bin != nil {
		if e := checkLength("secretBinary", "", len(bin), 1, 65536, true); e != nil {
			return e
		}
	}
	if str != nil && bin != nil {
		return errInvalidParameter("You can't specify both a binary secret value and a string secret value in the same secret.")
	}
	if required && str == nil && bin == nil {
		return errInvalidParameter("You must provide either SecretString or SecretBinary.")
	}
	return nil
}

func checkStages(field string, stages []string) *awsError {
	if stages == nil {
		return nil
	}
	if e := checkLength(field, "", len(stages), 1, 20, true); e != nil {
		return e
	}
	for _, st := range stages {
		if e := checkLength(field+".member", st, len(st), 1, 256, false); e != nil {
			return e
		}
	}
	return nil
}

// validName reports whether name uses only the characters that AWS allows in
// a secret name: ASCII letters, digits and /_+=.@-.
func validName(name string) bool {
	for _, c := range []byte(name) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("/_+=.@-", c) >= 0:
		default:
			return false
		}
	}
	return true
}
