-- Which organization API key made a change, when one did (see the control plane's api_keys).
ALTER TABLE audit_log ADD COLUMN actor_api_key_id uuid;
