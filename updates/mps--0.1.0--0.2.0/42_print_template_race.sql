-- ---- one active print template per type, also under concurrency ------------
-- (Trust: two create_print_template(..., true) of a new type at once failed
-- with 23505.) Changes of a type's templates take an advisory lock per type.
CREATE FUNCTION mps_internal.lock_print_template_type(p_template_type text) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT pg_advisory_xact_lock(1297101617, hashtext('print_template:' || p_template_type))
$$;
REVOKE ALL ON FUNCTION mps_internal.lock_print_template_type(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION mps.create_print_template(
  p_template_type  text,
  p_content        jsonb,
  p_activate       boolean DEFAULT true)
RETURNS mps.print_template_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_type text := upper(btrim(p_template_type));
  v mps.print_templates;
BEGIN
  PERFORM mps_internal.require_admin('create_print_template');
  IF v_type IS NULL OR v_type !~ '^[A-Z][A-Z0-9_]{2,63}$' THEN
    RAISE EXCEPTION 'invalid print template' USING ERRCODE = 'MP821',
      DETAIL = format('p_template_type = %L.', p_template_type),
      HINT = 'Use an upper-case type such as PASS_REDEMPTION_SLIP.';
  END IF;
  IF p_content IS NULL OR jsonb_typeof(p_content) <> 'object' OR length(p_content::text) > 65536 THEN
    RAISE EXCEPTION 'invalid print template' USING ERRCODE = 'MP821',
      DETAIL = 'p_content must be a JSON object of at most 64 kB.',
      HINT = 'Pass e.g. {"type":"PASS_REDEMPTION_SLIP","content":[{"text":"{{plan_name}} x{{uses}}"}]}.';
  END IF;
  -- One active template per type: the new one replaces it.
  PERFORM mps_internal.lock_print_template_type(v_type);
  IF coalesce(p_activate, true) THEN
    UPDATE mps.print_templates t SET is_active = false, updated_at = now()
     WHERE t.template_type = v_type AND t.is_active;
  END IF;
  INSERT INTO mps.print_templates (template_type, content, is_active)
  VALUES (v_type, p_content, coalesce(p_activate, true))
  RETURNING * INTO v;
  PERFORM mps_internal.audit('print_template.create', 'print_template', v.id::text, NULL, to_jsonb(v), NULL);
  RETURN (v.id, v.template_type, v.content, v.is_active, v.created_at, v.updated_at)::mps.print_template_view;
END
$$;

CREATE OR REPLACE FUNCTION mps.set_print_template_active(p_template_id bigint, p_is_active boolean)
RETURNS mps.print_template_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_old mps.print_templates;
  v mps.print_templates;
BEGIN
  PERFORM mps_internal.require_admin('set_print_template_active');
  SELECT * INTO v_old FROM mps.print_templates t WHERE t.id = p_template_id;
  IF NOT FOUND OR p_is_active IS NULL THEN
    RAISE EXCEPTION 'invalid print template' USING ERRCODE = 'MP821',
      DETAIL = format('No template %s, or p_is_active is missing.', coalesce(p_template_id::text, 'NULL')),
      HINT = 'List the templates with list_print_templates().';
  END IF;
  PERFORM mps_internal.lock_print_template_type(v_old.template_type);
  IF p_is_active THEN
    UPDATE mps.print_templates t SET is_active = false, updated_at = now()
     WHERE t.template_type = v_old.template_type AND t.is_active AND t.id <> v_old.id;
  END IF;
  UPDATE mps.print_templates t SET is_active = p_is_active, updated_at = now()
   WHERE t.id = v_old.id RETURNING * INTO v;
  PERFORM mps_internal.audit('print_template.update', 'print_template', v.id::text,
    jsonb_build_object('is_active', v_old.is_active), jsonb_build_object('is_active', v.is_active), NULL);
  RETURN (v.id, v.template_type, v.content, v.is_active, v.created_at, v.updated_at)::mps.print_template_view;
END
$$;
