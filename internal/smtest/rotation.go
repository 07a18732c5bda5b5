package smtest

import "time"

// Rotation: RotateSecret and CancelRotateSecret, and what they leave in
// DescribeSecret.
//
// RotateSecret does what AWS does before it invokes the rotation function:
// it records the configuration, and, unless RotateImmediately is false,
// creates the version that the rotation will fill, named by the
// ClientRequestToken and labelled AWSPENDING, with no value yet (reading it
// answers ResourceNotFoundException until a PutSecretValue with the same
// token stores one). The fake invokes no function: a test sends the four
// steps to its handler itself, with the VersionId RotateSecret answered.

// rotationState is the rotation configuration of a secret.
type rotationState struct {
	configured bool // RotateSecret has been called: RotationEnabled is reported
	enabled    bool
	lambdaARN  *string
	rules      *rotationRulesShape
	token      string    // the version the last RotateSecret created
	lastRot    time.Time // when AWSCURRENT last moved to such a version
}

func (s *Server) rotateSecretOp(body []byte, now time.Time) (any, *awsError) {
	var req rotateSecretRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if e := checkLen("clientRequestToken", req.ClientRequestToken, 32, 64, false); e != nil {
		return nil, e
	}
	if e := checkLen("rotationLambdaARN", req.RotationLambdaARN, 0, 2048, false); e != nil {
		return nil, e
	}
	if r := req.RotationRules; r != nil {
		if r.AutomaticallyAfterDays != nil && (*r.AutomaticallyAfterDays < 1 || *r.AutomaticallyAfterDays > 1000) {
			return nil, errValidation("Value '%d' at 'rotationRules.automaticallyAfterDays' failed to satisfy constraint: Member must have value between 1 and 1000", *r.AutomaticallyAfterDays)
		}
		if r.AutomaticallyAfterDays != nil && r.ScheduleExpression != nil {
			return nil, errInvalidParameter("You can't specify both AutomaticallyAfterDays and ScheduleExpression.")
		}
	}
	sec, e := s.liveSecret(req.SecretID)
	if e != nil {
		return nil, e
	}
	rot := &sec.rotation
	if req.RotationLambdaARN == nil && rot.lambdaARN == nil {
		return nil, errInvalidRequest("No Lambda rotation function ARN is associated with this secret.")
	}
	token := newUUID()
	if req.ClientRequestToken != nil {
		token = *req.ClientRequestToken
	}
	immediately := req.RotateImmediately == nil || *req.RotateImmediately
	cur, pend := sec.holder(stageCurrent), sec.holder(stagePending)
	if immediately {
		if v := sec.versions[token]; v != nil {
			// A retry of the same request: the rotation it started is
			// under way (or done). Anything else is a token reused.
			if !v.has(stagePending) && !v.has(stageCurrent) {
				return nil, errResourceExists("You can't modify an existing version, you can only create a new version.")
			}
			return arnNameVersionResponse{ARN: sec.arn, Name: sec.name, VersionID: token}, nil
		}
		if pend != nil && pend != cur {
			return nil, errInvalidRequest("A previous rotation isn't complete. That rotation will be reattempted.")
		}
	}
	if req.RotationLambdaARN != nil {
		a := *req.RotationLambdaARN
		rot.lambdaARN = &a
	}
	if req.RotationRules != nil {
		r := *req.RotationRules
		rot.rules = &r
	}
	rot.configured, rot.enabled = true, true
	sec.lastChanged = now
	out := arnNameVersionResponse{ARN: sec.arn, Name: sec.name}
	if immediately {
		v := &version{id: token, created: now}
		sec.versions[token] = v
		sec.order = append(sec.order, token)
		sec.attach(stagePending, v)
		rot.token = token
		out.VersionID = token
	}
	return out, nil
}

func (s *Server) cancelRotateSecretOp(body []byte, now time.Time) (any, *awsError) {
	var req secretIDRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	sec, e := s.liveSecret(req.SecretID)
	if e != nil {
		return nil, e
	}
	rot := &sec.rotation
	if !rot.configured {
		return nil, errInvalidRequest("Secrets Manager can't cancel rotation because rotation isn't configured for this secret.")
	}
	rot.enabled = false
	sec.lastChanged = now
	out := arnNameVersionResponse{ARN: sec.arn, Name: sec.name}
	// AWS leaves the labels as they are; it answers the version of the
	// rotation that was in progress, if any.
	if p := sec.holder(stagePending); p != nil && !p.has(stageCurrent) {
		out.VersionID = p.id
	}
	return out, nil
}

// rotated notes a move of AWSCURRENT to v: when v is the version of the
// last RotateSecret, the rotation has finished and LastRotatedDate is now.
func (sec *secret) rotated(v *version, now time.Time) {
	if sec.rotation.token != "" && v.id == sec.rotation.token {
		sec.rotation.lastRot = now
	}
}

// nextRotation is NextRotationDate: the last rotation (or the creation)
// plus AutomaticallyAfterDays, when rotation is enabled on such a rule. A
// ScheduleExpression is not evaluated; the fake reports no date for it.
func (sec *secret) nextRotation() time.Time {
	rot := sec.rotation
	if !rot.enabled || rot.rules == nil || rot.rules.AutomaticallyAfterDays == nil {
		return time.Time{}
	}
	from := rot.lastRot
	if from.IsZero() {
		from = sec.created
	}
	return from.Add(time.Duration(*rot.rules.AutomaticallyAfterDays) * 24 * time.Hour)
}

// hasValue reports whether v holds a value: the version that RotateSecret
// creates holds none until the rotation function puts one.
func (v *version) hasValue() bool { return v.str != nil || v.bin != nil }

// describeRotation fills the rotation members of a DescribeSecret answer.
func (sec *secret) describeRotation(out *describeSecretResponse) {
	rot := sec.rotation
	if !rot.configured {
		return
	}
	en := rot.enabled
	out.RotationEnabled = &en
	out.RotationLambdaARN = rot.lambdaARN
	if rot.rules != nil {
		r := *rot.rules
		out.RotationRules = &r
	}
	out.LastRotatedDate = epochPtr(rot.lastRot)
	out.NextRotationDate = epochPtr(sec.nextRotation())
}
