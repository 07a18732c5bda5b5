package smtest

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The operations. Each runs with Server.mu held, after sweep, and returns the
// response or the error that AWS answers.

func decode(body []byte, v any) *awsError {
	if err := json.Unmarshal(body, v); err != nil {
		return errSerialization(err)
	}
	return nil
}

// findSecret resolves a required SecretId.
func (s *Server) findSecret(id *string) (*secret, *awsError) {
	if e := checkRequired("secretId", id); e != nil {
		return nil, e
	}
	if e := checkLen("secretId", id, 1, 2048, false); e != nil {
		return nil, e
	}
	sec := s.resolve(*id)
	if sec == nil {
		return nil, errNotFound(msgNoSecret)
	}
	return sec, nil
}

// liveSecret resolves a required SecretId to a secret that is not scheduled
// for deletion.
func (s *Server) liveSecret(id *string) (*secret, *awsError) {
	sec, e := s.findSecret(id)
	if e != nil {
		return nil, e
	}
	if sec.isDeleted() {
		return nil, errInvalidRequest(msgMarkedForDeleted)
	}
	return sec, nil
}

func (s *Server) createSecretOp(body []byte, now time.Time) (any, *awsError) {
	var req createSecretRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if e := checkRequired("name", req.Name); e != nil {
		return nil, e
	}
	if e := checkLen("name", req.Name, 1, 512, false); e != nil {
		return nil, e
	}
	if !validName(*req.Name) {
		return nil, &awsError{400, "ValidationException",
			"Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"}
	}
	if e := checkLen("clientRequestToken", req.ClientRequestToken, 32, 64, false); e != nil {
		return nil, e
	}
	if e := checkLen("description", req.Description, 0, 2048, false); e != nil {
		return nil, e
	}
	if e := checkValue(req.SecretString, req.SecretBinary, false); e != nil {
		return nil, e
	}
	hasValue := req.SecretString != nil || req.SecretBinary != nil
	token := newUUID()
	if req.ClientRequestToken != nil {
		token = *req.ClientRequestToken
	}

	if sec := s.secrets[*req.Name]; sec != nil {
		if sec.isDeleted() {
			return nil, errInvalidRequest("You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		// A retry of the same request: the version it created is there
		// with the same value.
		if v := sec.versions[token]; hasValue && v != nil && v.sameValue(req.SecretString, req.SecretBinary) {
			return arnNameVersionResponse{ARN: sec.arn, Name: sec.name, VersionID: v.id}, nil
		}
		return nil, errResourceExists(fmt.Sprintf("The operation failed because the secret %s already exists.", *req.Name))
	}

	sec := s.createSecret(*req.Name, now)
	sec.description = req.Description
	sec.kmsKeyID = req.KmsKeyID
	sec.tags = slices.Clone(req.Tags)
	out := arnNameVersionResponse{ARN: sec.arn, Name: sec.name}
	if hasValue {
		sec.newVersion(token, req.SecretString, req.SecretBinary, nil, now)
		out.VersionID = token
	}
	return out, nil
}

func (s *Server) getSecretValueOp(body []byte, now time.Time) (any, *awsError) {
	var req getSecretValueRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if e := checkLen("versionId", req.VersionID, 32, 64, false); e != nil {
		return nil, e
	}
	if e := checkLen("versionStage", req.VersionStage, 1, 256, false); e != nil {
		return nil, e
	}
	sec, e := s.findSecret(req.SecretID)
	if e != nil {
		return nil, e
	}
	v, e := sec.lookup(req.VersionID, req.VersionStage)
	if e != nil {
		return nil, e
	}
	sec.touch(v, now)
	return sec.valueShape(v), nil
}

// storeVersion is the part that PutSecretValue and UpdateSecret share: a new
// version, or nothing if the token names a version with the same value.
func storeVersion(sec *secret, token *string, str *string, bin []byte, stages []string, now time.Time) (*version, *awsError) {
	id := newUUID()
	if token != nil {
		id = *token
	}
	if v := sec.versions[id]; v != nil {
		if !v.hasValue() {
			// The version RotateSecret created: the rotation function
			// stores its value with the same token.
			fillVersion(sec, v, str, bin, stages, now)
			return v, nil
		}
		if v.sameValue(str, bin) {
			return v, nil // idempotent retry: succeeds, changes nothing
		}
		return nil, errResourceExists("You can't modify an existing version, you can only create a new version.")
	}
	return sec.newVersion(id, str, bin, stages, now), nil
}

// fillVersion stores the value of a version that has none (RotateSecret's)
// and attaches the stages asked for; AWSCURRENT moving gives AWSPREVIOUS to
// the version it left, as for a new version.
func fillVersion(sec *secret, v *version, str *string, bin []byte, stages []string, now time.Time) {
	if str != nil {
		c := *str
		v.str = &c
	}
	if bin != nil {
		v.bin = slices.Clone(bin)
	}
	if len(stages) == 0 && !v.has(stagePending) {
		stages = []string{stageCurrent}
	}
	for _, st := range stages {
		sec.attach(st, v)
	}
	sec.lastChanged = now
}

func (s *Server) putSecretValueOp(body []byte, now time.Time) (any, *awsError) {
	var req putSecretValueRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if e := checkLen("clientRequestToken", req.ClientRequestToken, 32, 64, false); e != nil {
		return nil, e
	}
	if e := checkStages("versionStages", req.VersionStages); e != nil {
		return nil, e
	}
	if e := checkValue(req.SecretString, req.SecretBinary, true); e != nil {
		return nil, e
	}
	sec, e := s.liveSecret(req.SecretID)
	if e != nil {
		return nil, e
	}
	v, e := storeVersion(sec, req.ClientRequestToken, req.SecretString, req.SecretBinary, dedupe(req.VersionStages), now)
	if e != nil {
		return nil, e
	}
	stages := slices.Clone(v.stages)
	if stages == nil {
		stages = []string{}
	}
	return putSecretValueResponse{ARN: sec.arn, Name: sec.name, VersionID: v.id, VersionStages: stages}, nil
}

func (s *Server) updateSecretOp(body []byte, now time.Time) (any, *awsError) {
	var req updateSecretRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if e := checkLen("clientRequestToken", req.ClientRequestToken, 32, 64, false); e != nil {
		return nil, e
	}
	if e := checkLen("description", req.Description, 0, 2048, false); e != nil {
		return nil, e
	}
	if e := checkValue(req.SecretString, req.SecretBinary, false); e != nil {
		return nil, e
	}
	sec, e := s.liveSecret(req.SecretID)
	if e != nil {
		return nil, e
	}
	out := arnNameVersionResponse{ARN: sec.arn, Name: sec.name}
	if req.SecretString != nil || req.SecretBinary != nil {
		v, e := storeVersion(sec, req.ClientRequestToken, req.SecretString, req.SecretBinary, nil, now)
		if e != nil {
			return nil, e
		}
		out.VersionID = v.id
	}
	if req.Description != nil {
		d := *req.Description
		sec.description = &d
		sec.lastChanged = now
	}
	if req.KmsKeyID != nil {
		k := *req.KmsKeyID
		sec.kmsKeyID = &k
		sec.lastChanged = now
	}
	return out, nil
}

func (s *Server) updateSecretVersionStageOp(body []byte, now time.Time) (any, *awsError) {
	var req updateSecretVersionStageRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if e := checkRequired("versionStage", req.VersionStage); e != nil {
		return nil, e
	}
	if e := checkLen("versionStage", req.VersionStage, 1, 256, false); e != nil {
		return nil, e
	}
	if e := checkLen("moveToVersionId", req.MoveToVersionID, 32, 64, false); e != nil {
		return nil, e
	}
	if e := checkLen("removeFromVersionId", req.RemoveFromVersionID, 32, 64, false); e != nil {
		return nil, e
	}
	sec, e := s.liveSecret(req.SecretID)
	if e != nil {
		return nil, e
	}
	stage := *req.VersionStage
	if req.MoveToVersionID == nil && req.RemoveFromVersionID == nil {
		return nil, errInvalidParameter("You must specify MoveToVersionId, RemoveFromVersionId, or both.")
	}

	var from *version
	if req.RemoveFromVersionID != nil {
		from = sec.versions[*req.RemoveFromVersionID]
		if from == nil {
			return nil, errNotFound("Secrets Manager can't find the specified secret value for VersionId: " + *req.RemoveFromVersionID)
		}
		if !from.has(stage) {
			return nil, errInvalidParameter(fmt.Sprintf(
				"The staging label %s is not attached to version %s, so it can't be removed from it.", stage, from.id))
		}
	}

	if req.MoveToVersionID == nil {
		if stage == stageCurrent {
			return nil, errInvalidParameter("You can only move staging label AWSCURRENT to a different secret version. It can't be completely removed.")
		}
		from.remove(stage)
		sec.lastChanged = now
		return arnNameResponse{ARN: sec.arn, Name: sec.name}, nil
	}

	to := sec.versions[*req.MoveToVersionID]
	if to == nil {
		return nil, errNotFound("Secrets Manager can't find the specified secret value for VersionId: " + *req.MoveToVersionID)
	}
	if holder := sec.holder(stage); holder != nil && holder != to && from == nil {
		return nil, errInvalidParameter(fmt.Sprintf(
			"The parameter RemoveFromVersionId can't be empty. Staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.",
			stage, holder.id))
	}
	sec.attach(stage, to)
	if stage == stageCurrent {
		sec.rotated(to, now)
	}
	sec.lastChanged = now
	return arnNameResponse{ARN: sec.arn, Name: sec.name}, nil
}

func (s *Server) describeSecretOp(body []byte, _ time.Time) (any, *awsError) {
	var req secretIDRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	sec, e := s.findSecret(req.SecretID)
	if e != nil {
		return nil, e
	}
	out := describeSecretResponse{
		ARN:                sec.arn,
		Name:               sec.name,
		Description:        sec.description,
		KmsKeyID:           sec.kmsKeyID,
		LastChangedDate:    epochPtr(sec.lastChanged),
		LastAccessedDate:   epochPtr(sec.lastAccessed),
		DeletedDate:        epochPtr(sec.deleted),
		Tags:               slices.Clone(sec.tags),
		VersionIdsToStages: sec.versionsToStages(),
		CreatedDate:        epochPtr(sec.created),
	}
	sec.describeRotation(&out)
	return out, nil
}

func (s *Server) batchGetSecretValueOp(body []byte, now time.Time) (any, *awsError) {
	var req batchGetSecretValueRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.SecretIDList != nil {
		if e := checkLength("secretIdList", "", len(req.SecretIDList), 1, 20, true); e != nil {
			return nil, e
		}
	}
	if e := checkRange("maxResults", req.MaxResults, 1, 20); e != nil {
		return nil, e
	}
	if e := checkFilters(req.Filters); e != nil {
		return nil, e
	}
	switch {
	case req.SecretIDList == nil && req.Filters == nil:
		return nil, errInvalidParameter("You must specify either SecretIdList or Filters.")
	case req.SecretIDList != nil && req.Filters != nil:
		return nil, errInvalidParameter("You can't specify both SecretIdList and Filters.")
	case req.SecretIDList != nil && (req.MaxResults != nil || req.NextToken != nil):
		return nil, errInvalidParameter("MaxResults and NextToken can only be used with Filters.")
	}

	out := batchGetSecretValueResponse{SecretValues: []secretValueShape{}, Errors: []apiErrorShape{}}
	get := func(id string, sec *secret) {
		if sec == nil {
			out.Errors = append(out.Errors, apiErrorShape{id, "ResourceNotFoundException", msgNoSecret})
			return
		}
		if f := s.secretFault(sec); f != nil {
			e := f.response("BatchGetSecretValue", id, s.accountID)
			out.Errors = append(out.Errors, apiErrorShape{id, e.code, e.message})
			return
		}
		v, e := sec.lookup(nil, nil)
		if e != nil {
			out.Errors = append(out.Errors, apiErrorShape{id, e.code, e.message})
			return
		}
		sec.touch(v, now)
		out.SecretValues = append(out.SecretValues, sec.valueShape(v))
	}

	if req.SecretIDList != nil {
		for _, id := range req.SecretIDList {
			if e := checkLength("secretIdList.member", id, len(id), 1, 2048, false); e != nil {
				return nil, e
			}
		}
		for _, id := range req.SecretIDList {
			get(id, s.resolve(id))
		}
		return out, nil
	}

	matched := s.listed(req.Filters, false, nil, nil)
	page, next, e := paginate(matched, req.NextToken, req.MaxResults, 20)
	if e != nil {
		return nil, e
	}
	for _, sec := range page {
		get(sec.name, sec)
	}
	out.NextToken = next
	return out, nil
}

func (s *Server) deleteSecretOp(body []byte, now time.Time) (any, *awsError) {
	var req deleteSecretRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if e := checkRequired("secretId", req.SecretID); e != nil {
		return nil, e
	}
	force := req.ForceDeleteWithoutRecovery != nil && *req.ForceDeleteWithoutRecovery
	window := int64(30)
	if req.RecoveryWindowInDays != nil && *req.RecoveryWindowInDays != 0 {
		if force {
			return nil, errInvalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
		}
		window = *req.RecoveryWindowInDays
		if window < 7 || window > 30 {
			return nil, errInvalidParameter("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
		}
	}
	sec := s.resolve(*req.SecretID)
	if sec == nil {
		if !force {
			return nil, errNotFound(msgNoSecret)
		}
		// A forced delete of a secret that does not exist succeeds.
		out := deleteSecretResponse{Name: *req.SecretID, DeletionDate: epochPtr(now)}
		if strings.HasPrefix(*req.SecretID, "arn:") {
			out = deleteSecretResponse{ARN: *req.SecretID, DeletionDate: epochPtr(now)}
		}
		return out, nil
	}
	if force {
		delete(s.secrets, sec.name)
		return deleteSecretResponse{ARN: sec.arn, Name: sec.name, DeletionDate: epochPtr(now)}, nil
	}
	if sec.isDeleted() {
		return nil, errInvalidRequest("You can't perform this operation on the secret because it was already scheduled for deletion.")
	}
	sec.deleted = now
	sec.deletionDate = now.Add(time.Duration(window) * 24 * time.Hour)
	sec.lastChanged = now
	return deleteSecretResponse{ARN: sec.arn, Name: sec.name, DeletionDate: epochPtr(sec.deletionDate)}, nil
}

func (s *Server) restoreSecretOp(body []byte, now time.Time) (any, *awsError) {
	var req secretIDRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	sec, e := s.findSecret(req.SecretID)
	if e != nil {
		return nil, e
	}
	if sec.isDeleted() {
		sec.deleted, sec.deletionDate = time.Time{}, time.Time{}
		sec.lastChanged = now
	}
	return arnNameResponse{ARN: sec.arn, Name: sec.name}, nil
}

func (s *Server) listSecretsOp(body []byte, _ time.Time) (any, *awsError) {
	var req listSecretsRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if e := checkRange("maxResults", req.MaxResults, 1, 100); e != nil {
		return nil, e
	}
	if e := checkFilters(req.Filters); e != nil {
		return nil, e
	}
	if req.SortOrder != nil && *req.SortOrder != "asc" && *req.SortOrder != "desc" {
		return nil, errValidation("Value '%s' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [asc, desc]", *req.SortOrder)
	}
	if req.SortBy != nil && !slices.Contains([]string{"created-date", "last-accessed-date", "last-changed-date", "name"}, *req.SortBy) {
		return nil, errValidation("Value '%s' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [created-date, last-accessed-date, last-changed-date, name]", *req.SortBy)
	}
	planned := req.IncludePlannedDeletion != nil && *req.IncludePlannedDeletion
	matched := s.listed(req.Filters, planned, req.SortBy, req.SortOrder)
	page, next, e := paginate(matched, req.NextToken, req.MaxResults, 100)
	if e != nil {
		return nil, e
	}
	out := listSecretsResponse{SecretList: []secretListEntry{}, NextToken: next}
	for _, sec := range page {
		out.SecretList = append(out.SecretList, secretListEntry{
			ARN:                    sec.arn,
			Name:                   sec.name,
			Description:            sec.description,
			KmsKeyID:               sec.kmsKeyID,
			LastChangedDate:        epochPtr(sec.lastChanged),
			LastAccessedDate:       epochPtr(sec.lastAccessed),
			DeletedDate:            epochPtr(sec.deleted),
			Tags:                   slices.Clone(sec.tags),
			SecretVersionsToStages: sec.versionsToStages(),
			CreatedDate:            epochPtr(sec.created),
		})
	}
	return out, nil
}

func (s *Server) listSecretVersionIDsOp(body []byte, _ time.Time) (any, *awsError) {
	var req listSecretVersionIDsRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if e := checkRange("maxResults", req.MaxResults, 1, 100); e != nil {
		return nil, e
	}
	sec, e := s.findSecret(req.SecretID)
	if e != nil {
		return nil, e
	}
	deprecated := req.IncludeDeprecated != nil && *req.IncludeDeprecated
	var versions []*version
	for _, id := range slices.Backward(sec.order) {
		if v := sec.versions[id]; deprecated || len(v.stages) > 0 {
			versions = append(versions, v)
		}
	}
	page, next, e := paginate(versions, req.NextToken, req.MaxResults, 100)
	if e != nil {
		return nil, e
	}
	out := listSecretVersionIDsResponse{Versions: []secretVersionsListEntry{}, NextToken: next, ARN: sec.arn, Name: sec.name}
	for _, v := range page {
		out.Versions = append(out.Versions, secretVersionsListEntry{
			VersionID:        v.id,
			VersionStages:    slices.Clone(v.stages),
			LastAccessedDate: epochPtr(v.lastAccessed),
			CreatedDate:      epochPtr(v.created),
		})
	}
	return out, nil
}

// Listing, filters and pages.

// listed returns the secrets that pass every filter, sorted.
func (s *Server) listed(filters []filterShape, planned bool, sortBy, sortOrder *string) []*secret {
	var out []*secret
	for _, sec := range s.secrets {
		if sec.isDeleted() && !planned {
			continue
		}
		if matchFilters(sec, filters) {
			out = append(out, sec)
		}
	}
	by := "created-date"
	if sortBy != nil {
		by = *sortBy
	}
	slices.SortFunc(out, func(a, b *secret) int {
		var c int
		switch by {
		case "name":
			c = strings.Compare(a.name, b.name)
		case "last-changed-date":
			c = a.lastChanged.Compare(b.lastChanged)
		case "last-accessed-date":
			c = a.lastAccessed.Compare(b.lastAccessed)
		default:
			c = a.created.Compare(b.created)
		}
		return cmp.Or(c, cmp.Compare(a.seq, b.seq))
	})
	if sortOrder != nil && *sortOrder == "desc" {
		slices.Reverse(out)
	}
	return out
}

var filterKeys = []string{"description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all"}

func checkFilters(filters []filterShape) *awsError {
	if len(filters) > 10 {
		return checkLength("filters", "", len(filters), 0, 10, true)
	}
	for i, f := range filters {
		if f.Key == nil || !slices.Contains(filterKeys, *f.Key) {
			key := "null"
			if f.Key != nil {
				key = "'" + *f.Key + "'"
			}
			return errValidation("Value %s at 'filters.%d.member.key' failed to satisfy constraint: Member must satisfy enum value set: [%s]",
				key, i+1, strings.Join(filterKeys, ", "))
		}
		if e := checkLength(fmt.Sprintf("filters.%d.member.values", i+1), "", len(f.Values), 1, 10, true); e != nil {
			return e
		}
		for _, v := range f.Values {
			if e := checkLength(fmt.Sprintf("filters.%d.member.values.member", i+1), v, len(v), 0, 512, false); e != nil {
				return e
			}
		}
	}
	return nil
}

// matchFilters applies the filters of ListSecrets: every filter must match
// (and), a filter matches if one of its values does (or). A value matches by
// prefix; "description" and "all" ignore case; a leading "!" negates.
func matchFilters(sec *secret, filters []filterShape) bool {
	for _, f := range filters {
		ok := false
		for _, val := range f.Values {
			neg := false
			if rest, cut := strings.CutPrefix(val, "!"); cut {
				neg, val = true, rest
			}
			if matchFilter(sec, *f.Key, val) != neg {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func matchFilter(sec *secret, key, val string) bool {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	foldPrefix := func(s, prefix string) bool {
		return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
	}
	switch key {
	case "name":
		return strings.HasPrefix(sec.name, val)
	case "description":
		return sec.description != nil && foldPrefix(*sec.description, val)
	case "tag-key":
		return slices.ContainsFunc(sec.tags, func(t tagShape) bool { return strings.HasPrefix(str(t.Key), val) })
	case "tag-value":
		return slices.ContainsFunc(sec.tags, func(t tagShape) bool { return strings.HasPrefix(str(t.Value), val) })
	case "all":
		attrs := []string{sec.name, str(sec.description)}
		for _, t := range sec.tags {
			attrs = append(attrs, str(t.Key), str(t.Value))
		}
		for _, word := range strings.Fields(val) {
			for _, a := range attrs {
				for _, aw := range strings.FieldsFunc(a, func(r rune) bool { return strings.ContainsRune(" /_+=.@-", r) }) {
					if foldPrefix(aw, word) {
						return true
					}
				}
				if foldPrefix(a, word) {
					return true
				}
			}
		}
		return false
	}
	return false // primary-region, owning-service: no secret here has them
}

// paginate cuts one page out of items. A NextToken is opaque to clients; here
// it encodes the offset of the next page.
func paginate[T any](items []T, token *string, maxResults *int32, defaultMax int) ([]T, *string, *awsError) {
	start := 0
	if token != nil {
		raw, err := base64.RawURLEncoding.DecodeString(*token)
		n, perr := strconv.Atoi(strings.TrimPrefix(string(raw), "smtest:"))
		if err != nil || perr != nil || !strings.HasPrefix(string(raw), "smtest:") || n < 0 || n > len(items) {
			return nil, nil, &awsError{400, "InvalidNextTokenException", "The NextToken value is invalid."}
		}
		start = n
	}
	size := defaultMax
	if maxResults != nil {
		size = int(*maxResults)
	}
	end := min(start+size, len(items))
	var next *string
	if end < len(items) {
		t := base64.RawURLEncoding.EncodeToString([]byte("smtest:" + strconv.Itoa(end)))
		next = &t
	}
	return items[start:end], next, nil
}

// dedupe returns the distinct stages, sorted; nil stays nil.
func dedupe(stages []string) []string {
	if stages == nil {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(stages)))
}
