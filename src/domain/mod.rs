//! Domain types: parse, don't validate. Holding one means its value is valid;
//! each redacts itself in `Debug` where it carries personal data.
