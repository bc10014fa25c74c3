//! The VOD actions vodup knows by name, so that a grep for an action lands on one enum and the
//! service's dispatch is an exhaustive match (vod-api.md §5, authorization table §12).

use std::fmt;
use std::str::FromStr;

macro_rules! actions {
    ($($variant:ident),+ $(,)?) => {
        /// A VOD API action, spelled on the wire exactly as its variant name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $(
                #[doc = concat!("`", stringify!($variant), "`")]
                $variant,
            )+
        }

        impl Action {
            /// Every action, in declaration order.
            pub const ALL: &'static [Action] = &[$(Action::$variant),+];

            /// The wire name (`Action=` parameter or `x-acs-action` header).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => stringify!($variant),)+
                }
            }
        }

        impl FromStr for Action {
            type Err = UnknownAction;

            /// Action names are case-sensitive on the wire.
            fn from_str(name: &str) -> Result<Self, Self::Err> {
                match name {
                    $(stringify!($variant) => Ok(Action::$variant),)+
                    _ => Err(UnknownAction(name.to_owned())),
                }
            }
        }
    };
}

actions!(
    CreateUploadVideo,
    RefreshUploadVideo,
    CreateUploadImage,
    CreateUploadAttachedMedia,
    UploadMediaByURL,
    GetURLUploadInfos,
    GetVideoInfo,
    GetVideoInfos,
    GetVideoList,
    SearchMedia,
    UpdateVideoInfo,
    DeleteVideo,
    GetMezzanineInfo,
    GetPlayInfo,
    RegisterMedia,
    GetImageInfo,
    DeleteImage,
    GetAttachedMediaInfo,
    DeleteAttachedMedia,
    GetUploadDetails,
    ReportUploadProgress,
);

/// An `Action` name vodup does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown VOD action {0:?}")]
pub struct UnknownAction(pub String);

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>().unwrap(), *action);
        }
        assert_eq!(Action::UploadMediaByURL.as_str(), "UploadMediaByURL");
    }

    #[test]
    fn names_are_case_sensitive() {
        assert!("createuploadvideo".parse::<Action>().is_err());
        assert!("GetAttachedMediaInfos".parse::<Action>().is_err());
    }
}
