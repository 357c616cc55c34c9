//! `catalogue!`: an enum whose variants each have a stable name (what the database stores)
//! and words for people, declared side by side so neither list can drift from the other.

/// Declares `enum $name { … }` with `ALL`, `name()`, `description()` and `from_name()`.
macro_rules! catalogue {
    ($(#[$meta:meta])* $vis:vis enum $enum:ident {
        $($(#[$doc:meta])* $variant:ident => $name:literal, $description:literal;)*
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $vis enum $enum {
            $($(#[$doc])* $variant,)*
        }

        #[allow(dead_code)]
        impl $enum {
            pub const ALL: &'static [$enum] = &[$($enum::$variant),*];

            /// The stable name, as stored.
            pub fn name(self) -> &'static str {
                match self {
                    $($enum::$variant => $name,)*
                }
            }

            /// What it means, in words for people.
            pub fn description(self) -> &'static str {
                match self {
                    $($enum::$variant => $description,)*
                }
            }

            /// The variant stored as `name` (`None` for names since retired).
            pub fn from_name(name: &str) -> Option<$enum> {
                $enum::ALL.iter().copied().find(|v| v.name() == name)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    catalogue! {
        enum Colour {
            Red => "red", "The colour red";
            Blue => "blue", "The colour blue";
        }
    }

    #[test]
    fn names_and_words_come_from_one_list() {
        assert_eq!(Colour::ALL, &[Colour::Red, Colour::Blue]);
        assert_eq!((Colour::Blue.name(), Colour::Blue.description()), ("blue", "The colour blue"));
        assert_eq!(Colour::from_name("red"), Some(Colour::Red));
        assert_eq!(Colour::from_name("green"), None);
    }
}
