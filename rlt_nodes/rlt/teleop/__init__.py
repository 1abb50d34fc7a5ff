"""Human intervention: gamepad reading (joystick) and Joy states -> human chunks and operator events (teleop)."""
