//! Client wire formats. Pure code: no I/O, no accounts, no credentials.
//!
//! For Anthropic pass-through the gateway reads only what routing needs from the body and forwards the bytes
//! unchanged; the OpenAI conversion (issue #3) will live beside it.

pub mod anthropic;
pub mod openai;
