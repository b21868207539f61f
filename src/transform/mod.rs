//! Client wire formats. Pure code: no I/O, no accounts, no credentials.
//!
//! For Anthropic pass-through the gateway reads only what routing needs from the body and forwards the bytes
//! unchanged (`anthropic`); streams pass in whole events (`sse`), and what the gateway must write itself in
//! Anthropic's shape is in `anthropic_error`. The OpenAI conversion is in `openai`.

pub mod anthropic;
pub mod anthropic_error;
pub mod openai;
pub mod sse;
