# Vault Agent on the server's host: it logs in (AppRole), renders the
# server's credentials into /var/run/secrets/rotor, the directory the
# server's file source watches (mcpserver -secrets), and lets the rotator on
# the same host reach Vault with its token (api_proxy).
#
#   vault agent -config=/etc/vault-agent/agent.hcl
#
# Each template is written to a temporary file and renamed over the old one,
# so the server never reads half a file. The files are 0600 and belong to
# the user the agent runs as: run it as the server's user (mcpserver).

pid_file = "/run/vault-agent/agent.pid"

vault {
  address = "https://vault.example.com:8200"
}

auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role_id_file_path                   = "/etc/vault-agent/role-id"
      secret_id_file_path                 = "/etc/vault-agent/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }
}

# The rotator (rotor-rotator.service) talks to Vault through this listener;
# the agent adds its own token to each request.
api_proxy {
  use_auto_auth_token = "force"
}

listener "tcp" {
  address     = "127.0.0.1:8100"
  tls_disable = true
}

template_config {
  # KV secrets have no lease: read them again this often.
  static_secret_render_interval = "30s"
  exit_on_retry_failure         = false
}

# The database credential, at the version rotor's vault source serves as
# current (see db.json.ctmpl): never a version staged by a rotation still
# in progress.
template {
  source      = "/etc/vault-agent/db.json.ctmpl"
  destination = "/var/run/secrets/rotor/db.json"
  perms       = "0600"
}

template {
  source      = "/etc/vault-agent/api_key.ctmpl"
  destination = "/var/run/secrets/rotor/api_key"
  perms       = "0600"
}

template {
  source      = "/etc/vault-agent/jwt_signing_key.ctmpl"
  destination = "/var/run/secrets/rotor/jwt_signing_key"
  perms       = "0600"
}
