//! Provider simulators: M-Pesa (Daraja) and MTN MoMo over local HTTP, with the providers' own
//! paths, bodies and callbacks, scriptable per request (an outcome, a failure code, no
//! callback, duplicate callbacks, a callback before the initiating response, a slow or failing
//! status endpoint). Development, demos and tests need no network. A bank over a file exchange
//! directory (`bank`): pain.001 in, pain.002 and camt.054 out.

pub mod africastalking;
pub mod bank;
pub mod meta;
pub mod momo;
pub mod mpesa;
pub mod smtp;
pub mod telegram;

/// Both simulators, under `/simulator/mpesa` and `/simulator/momo`: a payment channel's base
/// URL points at one of them instead of the provider.
pub fn router(mpesa: &mpesa::Simulator, momo: &momo::Simulator) -> axum::Router {
    axum::Router::new()
        .nest("/simulator/mpesa", mpesa.router())
        .nest("/simulator/momo", momo.router())
}
