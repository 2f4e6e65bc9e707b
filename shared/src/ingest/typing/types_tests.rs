//! Typing the types beyond strings, numbers and bools.
