//! esdk-aws-lc (to be written).
