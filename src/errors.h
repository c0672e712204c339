/*
 * errors.h — the MPS error catalogue: every SQLSTATE a caller can cause.
 *
 * Class "MP" is ours. The README's error table lists the same codes; keep the
 * two in step. Permission failures use the standard 42501.
 */
#ifndef MPS_ERRORS_H
#define MPS_ERRORS_H

#include "utils/elog.h"

#define MPS_SQLSTATE(a, b, c) MAKE_SQLSTATE('M', 'P', a, b, c)

/* MP0xx: input */
#define ERRCODE_MPS_AMOUNT_INVALID          MPS_SQLSTATE('0', '0', '1')
#define ERRCODE_MPS_CURRENCY_UNKNOWN        MPS_SQLSTATE('0', '0', '2')
#define ERRCODE_MPS_PARAMETER_REQUIRED      MPS_SQLSTATE('0', '0', '3')
#define ERRCODE_MPS_PARAMETER_INVALID       MPS_SQLSTATE('0', '0', '4')
#define ERRCODE_MPS_FEATURE_DISABLED        MPS_SQLSTATE('0', '0', '5')
#define ERRCODE_MPS_ITEMS_INVALID           MPS_SQLSTATE('0', '0', '6')
#define ERRCODE_MPS_RAW_AMOUNT_MISMATCH     MPS_SQLSTATE('0', '0', '7')
#define ERRCODE_MPS_TOO_MANY_RULES          MPS_SQLSTATE('0', '0', '8')
#define ERRCODE_MPS_LABEL_INVALID           MPS_SQLSTATE('0', '0', '9')	/* raised in SQL */
#define ERRCODE_MPS_TAG_INVALID             MPS_SQLSTATE('0', '1', '0')

/* MP1xx: members and identities */
#define ERRCODE_MPS_MEMBER_NOT_FOUND        MPS_SQLSTATE('1', '0', '1')
#define ERRCODE_MPS_MEMBER_EXISTS           MPS_SQLSTATE('1', '0', '2')
#define ERRCODE_MPS_IDENTITY_TAKEN          MPS_SQLSTATE('1', '0', '3')
#define ERRCODE_MPS_EMAIL_INVALID           MPS_SQLSTATE('1', '0', '4')
#define ERRCODE_MPS_PHONE_INVALID           MPS_SQLSTATE('1', '0', '5')
#define ERRCODE_MPS_NAME_INVALID            MPS_SQLSTATE('1', '0', '6')
#define ERRCODE_MPS_GROUP_NOT_FOUND         MPS_SQLSTATE('1', '1', '1')
#define ERRCODE_MPS_MARKETING_ITEM_NOT_FOUND MPS_SQLSTATE('1', '1', '2')
#define ERRCODE_MPS_TARGET_NOT_FOUND        MPS_SQLSTATE('1', '1', '3')
#define ERRCODE_MPS_STAMPS_SHORT            MPS_SQLSTATE('1', '1', '4')
#define ERRCODE_MPS_STAMPS_CLOSED           MPS_SQLSTATE('1', '1', '5')
#define ERRCODE_MPS_NO_REWARD_LINE          MPS_SQLSTATE('1', '1', '6')

/* MP2xx: cards */
#define ERRCODE_MPS_CARD_NOT_FOUND          MPS_SQLSTATE('2', '0', '1')
#define ERRCODE_MPS_CARD_FROZEN             MPS_SQLSTATE('2', '0', '2')
#define ERRCODE_MPS_CARD_CLOSED             MPS_SQLSTATE('2', '0', '3')
#define ERRCODE_MPS_CARD_EXPIRED            MPS_SQLSTATE('2', '0', '4')
#define ERRCODE_MPS_CARD_TYPE_UNKNOWN       MPS_SQLSTATE('2', '0', '5')
#define ERRCODE_MPS_INSUFFICIENT_BALANCE    MPS_SQLSTATE('2', '0', '6')
#define ERRCODE_MPS_CARD_NOT_RECHARGEABLE   MPS_SQLSTATE('2', '0', '7')
#define ERRCODE_MPS_BALANCE_LIMIT           MPS_SQLSTATE('2', '0', '8')
#define ERRCODE_MPS_NOT_BOUND               MPS_SQLSTATE('2', '0', '9')
#define ERRCODE_MPS_CURRENCY_MISMATCH       MPS_SQLSTATE('2', '1', '0')
#define ERRCODE_MPS_BINDING_PASSWORD_WRONG  MPS_SQLSTATE('2', '1', '1')
#define ERRCODE_MPS_BINDING_THROTTLED       MPS_SQLSTATE('2', '1', '2')
#define ERRCODE_MPS_NO_BINDING_PASSWORD     MPS_SQLSTATE('2', '1', '3')
#define ERRCODE_MPS_ATTEMPT_NOT_RECORDED    MPS_SQLSTATE('2', '1', '4')
#define ERRCODE_MPS_LAST_OWNER              MPS_SQLSTATE('2', '1', '5')
#define ERRCODE_MPS_CARD_HAS_BALANCE        MPS_SQLSTATE('2', '1', '6')
#define ERRCODE_MPS_BINDING_NOT_ALLOWED     MPS_SQLSTATE('2', '1', '7')
/* raised from SQL (set_card_status) */
#define ERRCODE_MPS_FROZEN_BY_PLATFORM      MPS_SQLSTATE('2', '1', '8')

/* MP3xx: QR codes */
#define ERRCODE_MPS_QR_INVALID              MPS_SQLSTATE('3', '0', '1')
#define ERRCODE_MPS_QR_EXPIRED              MPS_SQLSTATE('3', '0', '2')
#define ERRCODE_MPS_QR_REVOKED              MPS_SQLSTATE('3', '0', '3')
#define ERRCODE_MPS_QR_USED                 MPS_SQLSTATE('3', '0', '4')
#define ERRCODE_MPS_QR_TTL_INVALID          MPS_SQLSTATE('3', '0', '5')

/* MP4xx: merchants */
#define ERRCODE_MPS_MERCHANT_UNKNOWN        MPS_SQLSTATE('4', '0', '1')
#define ERRCODE_MPS_MERCHANT_INACTIVE       MPS_SQLSTATE('4', '0', '2')
#define ERRCODE_MPS_MERCHANT_EXISTS         MPS_SQLSTATE('4', '0', '3')
#define ERRCODE_MPS_NOT_MERCHANT_TX         MPS_SQLSTATE('4', '0', '4')
#define ERRCODE_MPS_MERCHANT_ROLE_INVALID   MPS_SQLSTATE('4', '0', '5')

/* MP5xx: transactions and idempotency */
#define ERRCODE_MPS_IDEMPOTENCY_CONFLICT    MPS_SQLSTATE('5', '0', '1')
#define ERRCODE_MPS_ORDER_NO_USED           MPS_SQLSTATE('5', '0', '2')
#define ERRCODE_MPS_REFUND_EXCEEDS          MPS_SQLSTATE('5', '0', '3')
#define ERRCODE_MPS_NOT_REFUNDABLE          MPS_SQLSTATE('5', '0', '4')
#define ERRCODE_MPS_TX_NOT_FOUND            MPS_SQLSTATE('5', '0', '5')
#define ERRCODE_MPS_IDEMPOTENCY_KEY_INVALID MPS_SQLSTATE('5', '0', '6')

/* MP6xx: configuration */
#define ERRCODE_MPS_LEVELS_INVALID          MPS_SQLSTATE('6', '0', '1')
#define ERRCODE_MPS_SCHEMA_NOT_OURS         MPS_SQLSTATE('6', '0', '2')	/* raised from SQL (install) */

/* MP7xx: settlements and jobs (raised from SQL) */
#define ERRCODE_MPS_PERIOD_INVALID          MPS_SQLSTATE('7', '0', '1')
#define ERRCODE_MPS_PERIOD_NOT_OVER         MPS_SQLSTATE('7', '0', '2')
#define ERRCODE_MPS_PERIOD_OVERLAP          MPS_SQLSTATE('7', '0', '3')
#define ERRCODE_MPS_SETTLEMENT_NOT_FOUND    MPS_SQLSTATE('7', '0', '4')
#define ERRCODE_MPS_SETTLEMENT_PAID         MPS_SQLSTATE('7', '0', '5')
#define ERRCODE_MPS_CRON_MISSING            MPS_SQLSTATE('7', '0', '6')
#define ERRCODE_MPS_CRON_NOT_PG_CRON        MPS_SQLSTATE('7', '0', '7')
#define ERRCODE_MPS_SETTLEMENT_WAIT         MPS_SQLSTATE('7', '1', '0')

/* MP8xx: pass cards (src/pass.c, src/pass_redeem.c, sql/64_passes.sql) */
#define ERRCODE_MPS_PASS_PLAN_NOT_FOUND     MPS_SQLSTATE('8', '0', '1')
#define ERRCODE_MPS_PASS_PLAN_INACTIVE      MPS_SQLSTATE('8', '0', '2')
#define ERRCODE_MPS_PASS_PLAN_INVALID       MPS_SQLSTATE('8', '0', '3')
#define ERRCODE_MPS_PASS_PLAN_EXISTS        MPS_SQLSTATE('8', '0', '4')
#define ERRCODE_MPS_PASS_NOT_FOUND          MPS_SQLSTATE('8', '0', '5')
#define ERRCODE_MPS_PASS_SUSPENDED          MPS_SQLSTATE('8', '0', '6')
#define ERRCODE_MPS_PASS_REVOKED            MPS_SQLSTATE('8', '0', '7')
#define ERRCODE_MPS_PASS_EXPIRED            MPS_SQLSTATE('8', '0', '8')
#define ERRCODE_MPS_PASS_EXHAUSTED          MPS_SQLSTATE('8', '0', '9')
#define ERRCODE_MPS_PASS_LINE_NOT_COVERED   MPS_SQLSTATE('8', '1', '0')
#define ERRCODE_MPS_PASS_PAYMENT_INVALID    MPS_SQLSTATE('8', '1', '1')
#define ERRCODE_MPS_PASS_PAYMENT_MISMATCH   MPS_SQLSTATE('8', '1', '2')
#define ERRCODE_MPS_PASS_THIRD_PARTY        MPS_SQLSTATE('8', '1', '3')
#define ERRCODE_MPS_PASS_METHOD_NOT_ALLOWED MPS_SQLSTATE('8', '1', '4')
#define ERRCODE_MPS_PASS_ORDER_USED         MPS_SQLSTATE('8', '1', '5')
#define ERRCODE_MPS_PASS_NOT_PENDING        MPS_SQLSTATE('8', '1', '6')
#define ERRCODE_MPS_PASS_ORDER_NOT_FOUND    MPS_SQLSTATE('8', '1', '7')
#define ERRCODE_MPS_PASS_LINES_INVALID      MPS_SQLSTATE('8', '1', '8')
#define ERRCODE_MPS_PASS_STATUS_CHANGE      MPS_SQLSTATE('8', '1', '9')
#define ERRCODE_MPS_PASS_CURRENCY_MISMATCH  MPS_SQLSTATE('8', '2', '0')
#define ERRCODE_MPS_PRINT_TEMPLATE_INVALID  MPS_SQLSTATE('8', '2', '1')
#define ERRCODE_MPS_PASS_CARD_NOT_MEMBERS   MPS_SQLSTATE('8', '2', '2')

/* MP9xx: audit */
#define ERRCODE_MPS_AUDIT_APPEND_ONLY       MPS_SQLSTATE('9', '0', '1')

/* MP95x: payment provider webhooks (src/stripe.c, sql/67_payments.sql) */
#define ERRCODE_MPS_WEBHOOK_NO_SECRET         MPS_SQLSTATE('9', '5', '0')
#define ERRCODE_MPS_WEBHOOK_SIGNATURE_MISSING MPS_SQLSTATE('9', '5', '1')
#define ERRCODE_MPS_WEBHOOK_SIGNATURE_INVALID MPS_SQLSTATE('9', '5', '2')
#define ERRCODE_MPS_WEBHOOK_TIMESTAMP         MPS_SQLSTATE('9', '5', '3')
#define ERRCODE_MPS_WEBHOOK_PAYLOAD_INVALID   MPS_SQLSTATE('9', '5', '4')
#define ERRCODE_MPS_WEBHOOK_SECRET_INVALID    MPS_SQLSTATE('9', '5', '5')
#define ERRCODE_MPS_WEBHOOK_SECRET_EXISTS     MPS_SQLSTATE('9', '5', '6')

#endif
