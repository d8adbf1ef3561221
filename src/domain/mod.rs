//! Domain types: parse, don't validate. Holding one means its value is valid;
//! each redacts itself in `Debug` where it carries personal data.

pub mod call_analysis;
pub mod call_record;
pub mod call_type;
pub mod contact;
pub mod contact_phone;
pub mod elevenlabs_event;
pub mod email_address;
pub mod phone_number;
