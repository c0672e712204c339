-- 27_row_access: a movement's rows are read and written by key, without
-- statements (src/row_read.c, src/row_write.c). They land where an INSERT
-- would put them, under the table's constraints as they are now, with the
-- audit columns the defaults would give; a table that changed under MPS stops
-- the call instead of being written wrongly.
\i test/fixtures/money_prelude.sql
\o /dev/null
SELECT mps.create_merchant(p_code := 'T27SHOP', p_name := 'Row Shop');
\o
SELECT card_id AS card FROM mps.create_member_profile(p_name := 'Rhea') \gset
SELECT max(id) AS events_before FROM audit.event_log \gset

-- ===== rows go to the partition holding their time =====
SELECT tx_id AS rc1 FROM mps.recharge_card(:'card', 100.00, 'r27-1') \gset
SELECT tx_id AS pay1 FROM mt.admin_charge(:'card', 'T27SHOP', 30.00, 'c27-1') \gset
SELECT t.kind, t.tableoid::regclass::text = 'mps.transactions_' || to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY_MM')
         AS in_its_month
FROM mps.transactions t WHERE t.id IN (:'rc1', :'pay1') ORDER BY t.kind;
SELECT l.delta, l.tableoid::regclass::text = 'mps.point_ledger_' || to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY_MM')
         AS ledger_in_its_month
FROM mps.point_ledger l WHERE l.tx_id = :'pay1';
-- without this month's partition, the default one takes the row (as routing does)
BEGIN;
SELECT format('ALTER TABLE mps.transactions DETACH PARTITION mps.transactions_%s',
              to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')) \gexec
SELECT tx_id AS rc2 FROM mps.recharge_card(:'card', 1.00, 'r27-2') \gset
SELECT tableoid::regclass AS partition FROM mps.transactions WHERE id = :'rc2';
ROLLBACK;
-- with no partition for the time at all (this month's and the default one detached), a
-- payment of that time is not found, and a movement is refused as an INSERT would be
BEGIN;
SELECT format('ALTER TABLE mps.transactions DETACH PARTITION mps.transactions_%s',
              to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')) \gexec
ALTER TABLE mps.transactions DETACH PARTITION mps.transactions_default;
SELECT split_part(mt.try(format($$SELECT mps.merchant_refund_tx('T27SHOP', %L, 1.00, 'f27-9')$$, :'pay1')),
                  ' | ', 1) AS refund_of_an_unheld_payment;
SELECT split_part(mt.try(format($$SELECT mps.recharge_card(%L, 1.00, 'r27-9')$$, :'card')), ' | ', 1)
  AS recharge_with_no_partition;
ROLLBACK;
-- a refund finds its payment in that payment's partition and updates it there
SELECT r.refunded_total FROM mps.merchant_refund_tx('T27SHOP', :'pay1', 10.00, 'f27-1') r;
SELECT t.status, t.refunded_amount,
       t.tableoid::regclass::text = 'mps.transactions_' || to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY_MM')
         AS still_in_its_month
FROM mps.transactions t WHERE t.id = :'pay1';

-- ===== the audit event gets what the column defaults would give =====
SELECT e.db_role = session_user AS db_role_is_session_user,
       e.occurred_at BETWEEN now() - interval '1 hour' AND clock_timestamp() AS occurred_now,
       e.id > :events_before AS id_from_the_sequence,
       e.after->>'card_id' = :'card' AS names_its_card
FROM audit.event_log e WHERE e.entity_type = 'transaction' AND e.entity_id = :'rc1';

-- ===== CHECK constraints as they are now, also after they change =====
BEGIN;
ALTER TABLE mps.cards ADD CONSTRAINT t27_cap CHECK (balance <= 15000) NOT VALID;
SELECT split_part(mt.try(format($$SELECT mps.recharge_card(%L, 100.00, 'r27-3')$$, :'card')), ' | ', 1)
  AS over_the_new_cap;
-- the same number of constraints, another text: the new one applies
ALTER TABLE mps.cards DROP CONSTRAINT t27_cap, ADD CONSTRAINT t27_cap CHECK (balance <= 30000) NOT VALID;
SELECT mt.try(format($$SELECT mps.recharge_card(%L, 100.00, 'r27-3')$$, :'card')) AS under_the_changed_cap;
SELECT split_part(mt.try(format($$SELECT mps.recharge_card(%L, 200.00, 'r27-4')$$, :'card')), ' | ', 1)
  AS over_the_changed_cap;
ROLLBACK;
-- the constraint is gone: the same recharge goes through
SELECT mt.try(format($$SELECT mps.recharge_card(%L, 200.00, 'r27-4')$$, :'card')) AS without_the_cap;

-- ===== a changed table stops the call; changed back, it works again =====
BEGIN;
ALTER TABLE mps.transactions RENAME COLUMN reason TO reason_text;
SELECT mt.try(format($$SELECT mps.recharge_card(%L, 1.00, 'r27-5')$$, :'card')) AS renamed_column;
ROLLBACK;
BEGIN;
ALTER TABLE mps.idempotency_registry ALTER COLUMN operation TYPE varchar(40);
SELECT mt.try(format($$SELECT mps.recharge_card(%L, 1.00, 'r27-5')$$, :'card')) AS retyped_column;
ROLLBACK;
BEGIN;
ALTER TABLE mps.point_ledger ADD COLUMN note text NOT NULL DEFAULT 'x';
SELECT mt.try(format($$SELECT mt.admin_charge(%L, 'T27SHOP', 1.00, 'c27-2')$$, :'card'))
  AS new_column_with_a_default;
ROLLBACK;
-- a key read needs a unique index on its columns
BEGIN;
ALTER TABLE mps.merchants DROP CONSTRAINT merchants_code_key;
SELECT mt.try($$SELECT mps.merchant_refund_tx('T27SHOP', gen_random_uuid(), 1.00, 'f27-8')$$) AS key_without_its_index;
ROLLBACK;
SELECT mt.try(format($$SELECT mps.recharge_card(%L, 1.00, 'r27-5')$$, :'card')) AS table_as_before;

SELECT mt.card_state(:'card');
SELECT * FROM mt.invariants(now() - interval '1 hour') WHERE violations <> 0;
\o /dev/null
SELECT mps.set_membership_levels(:'default_ladder');
\o
