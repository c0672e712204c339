/*
 * mps.h — settings and constants shared by every C file.
 */
#ifndef MPS_H
#define MPS_H

extern int	mps_qr_bcrypt_cost;
extern int	mps_qr_default_ttl;
extern int	mps_qr_max_ttl;
extern char *mps_default_currency;
extern int	mps_password_bcrypt_cost;
extern int	mps_binding_max_attempts;
extern int	mps_binding_window;
extern bool mps_marketing_enabled;
extern char *mps_jwt_roles;
extern int	mps_stripe_tolerance;

/* First key of the two-int advisory locks MPS takes (ASCII "MPS1"). */
#define MPS_LOCK_NS_CARD	0x4D505331
/* ... and of the per-member stamp lock ("MPS2"). */
#define MPS_LOCK_NS_STAMPS	0x4D505332
/* ... and of the binding-attempt lanes ("MPS3", src/attempt_log.c). */
#define MPS_LOCK_NS_ATTEMPTS	0x4D505333
/* ... and of the per-PaymentIntent lock of Stripe credits ("MPS4"). */
#define MPS_LOCK_NS_STRIPE	0x4D505334

#endif
